import type { Context } from "aws-lambda";
import { deployedPattern, integrationTenants, rules, withChangeDeadline, type BusEnvelope, type Ports, type RuleName } from "@simroot/core";
import type { BusTarget } from "./bus/local-bus.ts";
import { runningAs } from "./grants.ts";

type Handler = (event: BusEnvelope, context: Context) => Promise<unknown>;

/** A Lambda context for a locally invoked handler (what middy and handlers may read). */
export function lambdaContext(functionName: string, timeoutMs = 30_000): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: "1024",
    awsRequestId: crypto.randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "local",
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/**
 * Loads, for every rule, the very handler module that Lambda runs, as a local bus target
 * over the given ports (each module's `handlerFor`; its Lambda `handler` is never called here).
 */
export async function loadRuleTargets(ports: Ports): Promise<Record<string, BusTarget>> {
  const entries = await Promise.all(
    Object.entries(rules).map(async ([name, rule]) => {
      const module = (await import(`@simroot/functions/${rule.handler.replace(/\.ts$/, "")}`)) as {
        handlerFor?: (ports: () => Ports) => Handler;
      };
      if (typeof module.handlerFor !== "function") throw new Error(`functions/src/${rule.handler} exports no handlerFor(ports)`);
      const handler = module.handlerFor(() => ports);
      const target: BusTarget = {
        // Read at each publish: the integrations' settings are those of the moment (tests turn them on after start).
        get pattern() {
          return deployedPattern(name as RuleName, integrationTenants());
        },
        // A consumer runs as its own invocation, as in Lambda: not under the deadline of the API request whose
        // change it was delivered from (the local bus may start a delivery within that request).
        invoke: (envelope) =>
          runningAs(name as RuleName, () => withChangeDeadline(undefined, () => handler(envelope, lambdaContext(name)))),
      };
      return [name, target] as const;
    }),
  );
  return Object.fromEntries(entries);
}
