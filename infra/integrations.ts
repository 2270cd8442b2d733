/**
 * The integrations' cloud side (see the README's "Integrations"): the AWS permissions of the
 * IoT, posture and SIEM consumers (declared in core's `platform/integrations.ts`, attached
 * to each consumer's role), their settings, and the AWS IoT Core custom authorizer with the
 * permission that lets IoT invoke it.
 *
 * Settings come from the deploying shell (`SIMROOT_IOT_TENANT_ID`, `SIMROOT_IOT_MQTT_HOST`,
 * `SIMROOT_TAILSCALE_*`, `SIMROOT_SIEM_*`); an integration whose tenant is unset stays off.
 */
import { integrationPermissions } from "../packages/core/src/platform/integrations.ts";
import type { RuleName } from "../packages/core/src/platform/rules.ts";

const settingNames = [
  "SIMROOT_IOT_TENANT_ID",
  "SIMROOT_IOT_PREFIX",
  "SIMROOT_IOT_MQTT_HOST",
  "SIMROOT_TAILSCALE_TENANT_ID",
  "SIMROOT_TAILSCALE_API_URL",
  "SIMROOT_TAILSCALE_TAILNET",
  "SIMROOT_TAILSCALE_API_KEY",
  "SIMROOT_SIEM_TENANT_ID",
  "SIMROOT_SIEM_URL",
  "SIMROOT_SIEM_TOKEN",
] as const;

/** The integration settings set in the deploying shell, for the functions' environment. */
export const integrationEnvironment: Record<string, string> = Object.fromEntries(
  settingNames.flatMap((name) => (process.env[name] ? [[name, process.env[name]!]] : [])),
);

/**
 * Adds the integration settings to the environment of the integration consumers `bus.ts`
 * creates (and of no other function): registered before the bus is imported.
 */
const consumers = Object.keys(integrationPermissions).map((rule) => `${rule.charAt(0).toUpperCase()}${rule.slice(1)}`);
$transform(sst.aws.Function, (args, _opts, name) => {
  if (!consumers.some((consumer) => name.includes(consumer))) return;
  args.environment = $output(args.environment).apply((environment) => ({ ...environment, ...integrationEnvironment }));
});

/** After `bus.ts`: each consumer's AWS permissions, and the IoT Core custom authorizer. */
export async function integrations() {
  const { subscriptions } = await import("./bus");
  const { functionArgs } = await import("./functions");
  for (const [rule, statements] of Object.entries(integrationPermissions) as [
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
  if (!integrationEnvironment.SIMROOT_IOT_TENANT_ID) return { iotAuthorizer: undefined };
  // Its permissions, bundling and tables come from the platform definition (`iotAuthorizer`), like every function's.
  const args = functionArgs("iotAuthorizer");
  const fn = new sst.aws.Function("IotAuthorizer", { ...args, environment: { ...args.environment, ...integrationEnvironment } });
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
