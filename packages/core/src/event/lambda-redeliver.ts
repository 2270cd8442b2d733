/**
 * Redrive in AWS: the rule's consumer function is invoked asynchronously with the event, as
 * EventBridge invokes it (and so with the same retries and on-failure destination: a redrive
 * that fails again returns to the dead-letter queue). The function of each rule is named in
 * `SIMROOT_CONSUMER_FUNCTIONS` (JSON, rule -> function name), set by infra.
 * lambda-redeliver.test.ts runs the real @aws-sdk/client-lambda client against a loopback
 * server speaking Lambda's Invoke REST protocol; AWS itself is not exercised here.
 */
import type { LambdaClient } from "@aws-sdk/client-lambda";
import { consumerFunctions } from "../config.ts";
import { lazy, sdkClientSettings } from "../store/sdk-settings.ts";
import type { Redeliver } from "./dead-letter-record.ts";

export function lambdaRedeliver(functions: Readonly<Record<string, string>>, given?: LambdaClient): Redeliver {
  // The client's package is loaded on the first redrive, not at module init (`lazy`).
  const lambda = lazy(async () => {
    const { InvokeCommand, LambdaClient } = await import("@aws-sdk/client-lambda");
    return { client: given ?? new LambdaClient(sdkClientSettings()), InvokeCommand };
  });
  return async (rule, envelope) => {
    const functionName = functions[rule];
    if (!functionName) throw new Error(`no consumer function is known for rule ${rule}`);
    const { client, InvokeCommand } = await lambda();
    const { StatusCode } = await client.send(
      new InvokeCommand({ FunctionName: functionName, InvocationType: "Event", Payload: Buffer.from(JSON.stringify(envelope)) }),
    );
    if (StatusCode !== 202) throw new Error(`Lambda answered ${StatusCode} to the asynchronous invocation of ${functionName}`);
  };
}

/** The redeliverer the environment names (`SIMROOT_CONSUMER_FUNCTIONS`), or none. */
export function environmentRedeliver(): Redeliver | undefined {
  const functions = consumerFunctions();
  return functions ? lambdaRedeliver(functions) : undefined;
}
