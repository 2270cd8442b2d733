/** Roles and stored records in tests of what a rule or a subscription acts as (reviews 87 and 90). */
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { expect } from "vitest";
import { recordKey, type RecordKind } from "@simroot/core/automation/records";
import { call, type tenantClient, type TestRuntime } from "./runtime.ts";

/** An operator key of the tenant, as a `call` of its own. */
export async function operatorOf(runtime: TestRuntime, tenant: Awaited<ReturnType<typeof tenantClient>>) {
  const key = await tenant.call("POST", "/v1/keys", { name: "ops", role: "operator" });
  expect(key.status, key.text).toBe(201);
  return (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
    call(runtime, key.json.token, method, path, body, headers);
}

/** Rewrites a stored rule or subscription as older code could have written it (an UpdateExpression on its item). */
export async function rewriteStored(
  runtime: TestRuntime,
  tenantId: string,
  kind: RecordKind,
  id: string,
  update: { expression: string; names: Record<string, string>; values?: Record<string, unknown> },
) {
  await runtime.ports.db.send(
    new UpdateCommand({
      TableName: runtime.ports.tables.automation,
      Key: recordKey(tenantId, kind, id),
      UpdateExpression: update.expression,
      ExpressionAttributeNames: update.names,
      ...(update.values ? { ExpressionAttributeValues: update.values } : {}),
    }),
  );
}

/** Removes a record's role, as it was stored before roles were recorded (subscriptions: review 87, rules: review 90). */
export const forgetRole = (runtime: TestRuntime, tenantId: string, kind: RecordKind, id: string) =>
  rewriteStored(runtime, tenantId, kind, id, { expression: "REMOVE #role", names: { "#role": "role" } });
