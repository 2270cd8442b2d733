/**
 * Every function's role trusts the Lambda service, and nothing else. SST's Function gives each role a trust policy that
 * also names the account's root in every stage (what `sst dev` needs to run a function on a laptop under its role): in
 * a deployed stage that would let any principal of the account allowed `sts:AssumeRole` act as any function, the API
 * included. Registered before any function is created (sst.config.ts); `sst dev` keeps SST's policy.
 */
const lambdaOnly = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: ["lambda.amazonaws.com"] }, Action: ["sts:AssumeRole"] }],
});

$transform(sst.aws.Function, (args) => {
  if ($dev) return;
  const before = args.transform?.role;
  args.transform = {
    ...args.transform,
    role: (roleArgs, opts, name) => {
      if (typeof before === "function") before(roleArgs, opts, name);
      else if (before) Object.assign(roleArgs, before);
      roleArgs.assumeRolePolicy = lambdaOnly;
    },
  };
});
export {};
