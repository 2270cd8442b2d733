// Runs inside the synthesized program's process (see sst-synth.ts): installs Pulumi's mocks,
// then SST's globals, then the app. Every registered resource is written to SYNTH_OUT.
import { writeFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";

const resources = [];
const calls = [];
const region = "us-east-1";
const account = "123456789012";

function policyJson(inputs) {
  const list = (value) => (value === undefined ? undefined : Array.isArray(value) ? value : [value]);
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: (inputs.statements ?? []).map((s) => ({
      ...(s.sid ? { Sid: s.sid } : {}),
      Effect: s.effect ?? "Allow",
      ...(s.actions ? { Action: list(s.actions) } : {}),
      ...(s.notActions ? { NotAction: list(s.notActions) } : {}),
      ...(s.resources ? { Resource: list(s.resources) } : {}),
      ...(s.principals ? { Principal: Object.fromEntries(s.principals.map((p) => [p.type, list(p.identifiers)])) } : {}),
      ...(s.conditions
        ? {
            Condition: s.conditions.reduce((all, c) => {
              all[c.test] = { ...(all[c.test] ?? {}), [c.variable]: list(c.values) };
              return all;
            }, {}),
          }
        : {}),
    })),
  });
}

await pulumi.runtime.setMocks(
  {
    newResource(args) {
      const name = args.inputs.name ?? args.inputs.bucket ?? args.name;
      const kind = args.type.split(":")[1]?.split("/")[0] ?? "x";
      // ARNs shaped like AWS's where a check reads them (S3's has no region or account), else <service>:<Type>/<name>.
      const arn = kind === "s3" ? `arn:aws:s3:::${name}` : `arn:aws:${kind}:${region}:${account}:${args.type.split(":").at(-1)}/${name}`;
      const state = {
        ...args.inputs,
        name,
        arn,
        id: `${args.name}-id`,
        ...(args.type === "aws:sqs/queue:Queue" ? { url: `https://sqs.${region}.amazonaws.com/${account}/${name}` } : {}),
        ...(args.type === "aws:lambda/function:Function" ? { invokeArn: `${arn}/invocations`, qualifiedArn: `${arn}:$LATEST` } : {}),
        ...(args.type === "aws:dynamodb/table:Table" ? { streamArn: args.inputs.streamEnabled ? `${arn}/stream/1` : undefined } : {}),
        ...(args.type === "aws:apigatewayv2/api:Api"
          ? { apiEndpoint: `https://${args.name}.execute-api.${region}.amazonaws.com`, executionArn: arn }
          : {}),
      };
      resources.push({
        type: args.type,
        name: args.name,
        inputs: args.inputs,
        custom: args.custom,
        // What AWS would answer (as the mocks make it up): what other resources' inputs refer to.
        outputs: { name, arn, id: state.id, ...(state.url ? { url: state.url } : {}) },
      });
      return { id: `${args.name}-id`, state };
    },
    call(args) {
      calls.push({ token: args.token, inputs: args.inputs });
      switch (args.token) {
        case "aws:index/getRegion:getRegion":
          return { name: region, region, id: region, endpoint: `ec2.${region}.amazonaws.com`, description: region };
        case "aws:index/getCallerIdentity:getCallerIdentity":
          return { accountId: account, arn: `arn:aws:iam::${account}:user/synth`, userId: "synth", id: account };
        case "aws:index/getPartition:getPartition":
          return { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws", reverseDnsPrefix: "com.amazonaws" };
        case "aws:iam/getPolicyDocument:getPolicyDocument":
          return { ...args.inputs, json: policyJson(args.inputs), minifiedJson: policyJson(args.inputs), id: "policy" };
        case "aws:iot/getEndpoint:getEndpoint":
          return { endpointAddress: `synth-ats.iot.${region}.amazonaws.com`, id: "iot" };
        default:
          // A data source the app starts to read needs an answer here: made up silently, it could pass a check.
          throw new Error(`the synthesis has no answer for the data source ${args.token}`);
      }
    },
  },
  "simroot",
  process.env.SYNTH_STAGE,
  false,
);

const stage = process.env.SYNTH_STAGE;
const root = process.env.SYNTH_ROOT;
globalThis.$dev = false;
globalThis.$cli = {
  command: "deploy",
  paths: { root, platform: `${root}/.sst/platform`, work: process.env.SYNTH_WORK, home: process.env.SYNTH_WORK },
  state: { version: {} },
  home: "aws",
};
globalThis.$app = { name: "simroot", stage, removal: "remove", protect: false, providers: {} };
const { default: config, run, sst } = await import(process.env.SYNTH_PROGRAM);
globalThis.sst = sst;
globalThis.aws = await import("@pulumi/aws");
const app = config.app({ stage });
globalThis.$app = { ...app, stage, removal: app.removal ?? "remove", protect: app.protect ?? false };
const outputs = await pulumi.runtime.runInPulumiStack(() => run(config.run));
const resolved = await new Promise((resolve) => pulumi.output(outputs).apply(resolve));
// Every registration the program started, including those waiting on other resources' outputs.
await pulumi.runtime.disconnect();
writeFileSync(process.env.SYNTH_OUT, JSON.stringify({ resources, calls, outputs: resolved }));
process.exit(0);
