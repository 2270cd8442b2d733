/**
 * The feed's backstop (core ledger/catch-up.ts): a committed change its committer never sequenced (the Lambda
 * instance stopped at its timeout, was frozen once it answered, or the store refused its sequencing for longer than
 * its commit waits) reaches the feed within seconds, sequenced by the history reader of the audit stream, instead of
 * waiting for the tenant's next change, which for an idle tenant may never come.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { documentClient, feedHeadKey, feedVersionSchema, portsFor, registerDevice, verifyAuditChain, type Ports } from "@simroot/core";
import { readFeedHead } from "@simroot/core/ledger/sequencer";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";
import { feedItems, refuseSequencerReads } from "./support/store-faults.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const ctxFor = (tenantId: string) => ({ tenantId, actor: "system:test", requestId: "req_test" });
const headOf = async (tenantId: string) => readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16);

/** The devices the tenant's feed versions carry. */
const devicesInFeed = async (tenantId: string) =>
  (await feedItems(runtime.ports, tenantId))
    .flatMap((item) => feedVersionSchema.shape.entries.parse(item.entries) as { kind: string; key: string }[])
    .filter((entry) => entry.kind === "device")
    .map((entry) => entry.key);

/** The store refuses every move of the tenant's feed head by this client (its version gets written, its head never). */
function refuseHeadMoves(client: ReturnType<typeof documentClient>, tenantId: string) {
  const head = feedHeadKey(tenantId);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { TableName?: string; Item?: Record<string, unknown> };
      const command = String((context as { commandName?: string }).commandName);
      if (["PutCommand", "PutItemCommand"].includes(command) && input.Item?.pk === head.pk && input.Item?.sk === head.sk) {
        throw Object.assign(new Error("Throughput exceeds the current capacity"), {
          name: "ProvisionedThroughputExceededException",
          $metadata: { httpStatusCode: 400 },
        });
      }
      return next(args);
    },
    { step: "initialize", name: "refuseHeadMoves" },
  );
}

describe("the feed's backstop", () => {
  it("sequences a committed change its committer never sequenced (stopped, frozen, refused), within seconds", async () => {
    const tenantId = "ten_backstop";
    // The committing instance commits, then every sequencing it tries is refused: as good as gone after its commit.
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    refuseSequencerReads(client, () => true);
    const ports: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const committedAt = Date.now();
    const committed = registerDevice(ports, ctxFor(tenantId), { imsi: "208010000000951" });
    // Its commit answers once its wait for the feed ends (5 s); the history reader has sequenced the tenant before.
    await expect.poll(async () => (await headOf(tenantId)).version, { timeout: 4_500, interval: 100 }).toBeGreaterThan(0);
    expect(Date.now() - committedAt).toBeLessThan(4_500);
    const device = await committed;
    expect(await devicesInFeed(tenantId)).toEqual([device.value.id]);
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: true });
    client.destroy();
  }, 20_000);

  it("moves the head of an idle tenant to a version its writer left past it", async () => {
    const tenantId = "ten_backstop_version";
    // The committer sequences its change, but the head never moves for it: the version is written, past the head.
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    refuseHeadMoves(client, tenantId);
    const ports: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const committed = registerDevice(ports, ctxFor(tenantId), { imsi: "208010000000952" });
    await expect.poll(async () => (await headOf(tenantId)).version, { timeout: 4_500, interval: 100 }).toBe(1);
    const device = await committed;
    expect(await devicesInFeed(tenantId)).toEqual([device.value.id]);
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: true });
    client.destroy();
  }, 20_000);
});
