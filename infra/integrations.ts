/**
 * The integrations' cloud side (see the README's "Integrations"): the AWS permissions of the
 * IoT, posture and SIEM consumers (declared in core's `platform/integrations.ts`, attached
 * to each consumer's role), their settings, and the AWS IoT Core custom authorizer with the
 * permission that lets IoT invoke it.
 *
 * Settings come from the deploying shell (`SIMROOT_IOT_TENANT_ID`, `SIMROOT_IOT_MQTT_HOST`,
 * `SIMROOT_TAILSCALE_*`, `SIMROOT_SIEM_*`); an integration whose tenant is unset stays off.
 */
import { iotPrefix, tokenUrl } from "../packages/core/src/config.ts";
import { integrationPermissionsFor } from "../packages/core/src/platform/integrations.ts";
import type { RuleName } from "../packages/core/src/platform/rules.ts";

/** Each integration's settings: a function gets its own integration's, and no other's. */
const settingNames = {
  iot: ["SIMROOT_IOT_TENANT_ID", "SIMROOT_IOT_PREFIX", "SIMROOT_IOT_MQTT_HOST", "SIMROOT_IOT_ENDPOINT"],
  tailscale: ["SIMROOT_TAILSCALE_TENANT_ID", "SIMROOT_TAILSCALE_API_URL", "SIMROOT_TAILSCALE_TAILNET", "SIMROOT_TAILSCALE_API_KEY"],
  siem: ["SIMROOT_SIEM_TENANT_ID", "SIMROOT_SIEM_URL", "SIMROOT_SIEM_TOKEN"],
} as const;

/** The settings of one integration set in the deploying shell, for the environment of its functions. */
export function integrationEnvironment(integration: keyof typeof settingNames): Record<string, string> {
  // The URLs a token is sent to, checked before anything is deployed (https, core config.ts `tokenUrl`).
  for (const name of ["SIMROOT_SIEM_URL", "SIMROOT_TAILSCALE_API_URL"]) tokenUrl(name, process.env[name] || undefined);
  return Object.fromEntries(settingNames[integration].flatMap((name) => (process.env[name] ? [[name, process.env[name]!]] : [])));
}

/**
 * Adds its integration's settings (a SIEM token, a Tailscale API key among them) to the environment of each integration
 * consumer `bus.ts` creates, and to no other function: registered before the bus is imported.
 */
const consumers = { IotSync: "iot", PostureSync: "tailscale", SiemExport: "siem" } as const satisfies Record<
  Capitalize<keyof ReturnType<typeof integrationPermissionsFor>>,
  keyof typeof settingNames
>;
$transform(sst.aws.Function, (args, _opts, name) => {
  const consumer = (Object.keys(consumers) as (keyof typeof consumers)[]).find((each) => name.includes(each));
  if (!consumer) return;
  const settings = integrationEnvironment(consumers[consumer]);
  args.environment = $output(args.environment).apply((environment) => ({ ...environment, ...settings }));
});

/** The IoT Core custom authorizer's function, once `integrations()` made it (only with the IoT integration): ops.ts alarms on it. */
export let iotAuthorizerFunction: sst.aws.Function | undefined;

/** After `bus.ts`: each consumer's AWS permissions, and the IoT Core custom authorizer. */
export async function integrations() {
  const { subscriptions } = await import("./bus");
  const { functionArgs } = await import("./functions");
  // Named by the prefix the IoT sync names its resources with (the deploying shell's, checked).
  for (const [rule, statements] of Object.entries(integrationPermissionsFor(iotPrefix(process.env.SIMROOT_IOT_PREFIX || undefined))) as [
    RuleName,
    readonly { actions: readonly string[]; resources: readonly string[] }[],
  ][]) {
    if (statements.length === 0) continue;
    const fn = subscriptions[rule].subscriber.apply((subscriber) => subscriber.nodes.function);
    new aws.iam.RolePolicy(`${rule}IntegrationPolicy`, {
      role: fn.apply((lambda) => lambda.nodes.role.name),
      policy: JSON.stringify({
        Version: "2012-10-17",
        Statement: statements.map((statement) => ({ Effect: "Allow", Action: [...statement.actions], Resource: [...statement.resources] })),
      }),
    });
  }
  const iotSettings = integrationEnvironment("iot");
  if (!iotSettings.SIMROOT_IOT_TENANT_ID) return { iotAuthorizer: undefined };
  // Its permissions, bundling and tables come from the platform definition (`iotAuthorizer`), like every function's.
  const args = functionArgs("iotAuthorizer");
  const fn = new sst.aws.Function("IotAuthorizer", { ...args, environment: { ...args.environment, ...iotSettings } });
  iotAuthorizerFunction = fn;
  const iotAuthorizer = new aws.iot.Authorizer("IotMqttAuthorizer", {
    name: `${$app.name}-${$app.stage}-mqtt`,
    authorizerFunctionArn: fn.arn,
    // Devices authenticate with a signature of their IoT SAFE key in the MQTT password, checked by the function.
    signingDisabled: true,
    status: "ACTIVE",
    enableCachingForHttp: false,
  });
  new aws.lambda.Permission("IotMqttAuthorizerInvoke", {
    action: "lambda:InvokeFunction",
    function: fn.name,
    principal: "iot.amazonaws.com",
    sourceArn: iotAuthorizer.arn,
  });
  return { iotAuthorizer };
}
