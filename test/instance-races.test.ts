/**
 * The same change asked of two instances at once (review 112): two runtimes sharing only the tables, as Lambda
 * instances do, each authenticating its request when it begins.
 */
import { randomBytes } from "node:crypto";
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { beforeAll, describe, expect, it } from "vitest";
import { rotateApiKey, type Ports } from "@simroot/core";
import { call, tenantClient, twoInstances, type TestRuntime } from "./support/runtime.ts";

// Two instances sharing only the tables.
const instances = twoInstances("r112");
let a: TestRuntime;
let b: TestRuntime;
beforeAll(() => void ({ a, b } = instances));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("two instances asked conflicting changes at once (review 112)", () => {
  it("two admin keys revoking each other on two instances leave the tenant an admin key", async () => {
    const tenant = await tenantClient(a, `r112-keys-${randomBytes(3).toString("hex")}`);
    const second = (await tenant.call("POST", "/v1/keys", { name: "second admin", role: "admin" })).json;
    // Each key has been used on the instance that serves it (an admin's console, another admin's script).
    expect((await call(a, tenant.token, "GET", "/v1/keys")).status).toBe(200);
    expect((await call(b, second.token, "GET", "/v1/keys")).status).toBe(200);
    // One after the other, the second revocation is refused (401: its key was just revoked) and an admin key remains.
    const [first, other] = await Promise.all([
      call(a, tenant.token, "DELETE", `/v1/keys/${second.key.keyId}`),
      call(b, second.token, "DELETE", `/v1/keys/${tenant.keyId}`),
    ]);
    const { Items } = await a.ports.db.send(
      new QueryCommand({
        TableName: a.ports.tables.control,
        IndexName: "byTenant",
        KeyConditionExpression: "gsi1pk = :pk",
        ExpressionAttributeValues: { ":pk": `T#${tenant.tenant.id}#key` },
      }),
    );
    const liveAdminKeys = Items!.filter((key) => key.role === "admin" && !key.revokedAt).length;
    await sleep(1_100); // past the 1 s key cache of either instance
    const lockedOut = [(await call(a, tenant.token, "GET", "/v1/keys")).status, (await call(b, second.token, "GET", "/v1/keys")).status];
    expect(liveAdminKeys, JSON.stringify({ revocations: [first.status, other.status], adminCallsAfter: lockedOut })).toBe(1);
    // The refused one is told as its key's next request would be.
    expect([first.status, other.status].sort()).toEqual([200, 401]);
    expect(lockedOut.sort()).toEqual([200, 401]);
  });

  it("a key rotated on two instances from the same read answers one token that works and refuses the other", async () => {
    const tenant = await tenantClient(a, `r112-rot-${randomBytes(3).toString("hex")}`);
    const pep = (await tenant.call("POST", "/v1/keys", { name: "site pep", role: "pep" })).json;
    // Both instances read the key before either writes (the requests arrived together).
    let read = 0;
    let bothRead: () => void = () => {};
    const barrier = new Promise<void>((resolve) => (bothRead = resolve));
    const readingTogether = (runtime: TestRuntime): Ports => ({
      ...runtime.ports,
      db: {
        send: async (command: { constructor: { name: string } }) => {
          const result = await runtime.ports.db.send(command as never);
          if (command.constructor.name === "GetCommand" && ++read === 2) bothRead();
          if (command.constructor.name === "GetCommand") await Promise.race([barrier, sleep(5_000)]);
          return result;
        },
      } as unknown as Ports["db"],
    });
    const ctx = { tenantId: tenant.tenant.id, actor: `key:${tenant.keyId}`, requestId: "r112-rotate" };
    const outcomes = await Promise.allSettled([
      rotateApiKey(readingTogether(a), ctx, { id: pep.key.keyId }),
      rotateApiKey(readingTogether(b), ctx, { id: pep.key.keyId }),
    ]);
    await sleep(1_100); // past the 1 s key cache of either instance
    const answered = outcomes.flatMap((outcome) => (outcome.status === "fulfilled" ? [outcome.value.value.token] : []));
    const refused = outcomes.flatMap((outcome) => (outcome.status === "rejected" ? [(outcome.reason as { code?: string }).code] : []));
    expect({ answered: answered.length, refused }).toEqual({ answered: 1, refused: ["key.rotated_concurrently"] });
    // The token answered works.
    expect((await call(a, answered[0], "GET", "/v1/feed?wait=0")).status).toBe(200);
  });
});
