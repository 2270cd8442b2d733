/**
 * One instance's clock wrong, by seconds to minutes, while the others are right (review 105). Lambda hosts are
 * NTP-synced, but nothing here may rely on two instances' clocks agreeing: what one instance decides from its clock
 * and another relies on must hold when they differ (the PEP's own tolerance is 2 s, README "Clock skew").
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createApp } from "@simroot/api";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import {
  claimIdempotencyKey,
  documentClient,
  feedPartition,
  feedSortKey,
  memorySigner,
  portsFor,
  registerDevice,
  type Ports,
} from "@simroot/core";
import { readFeedHead } from "@simroot/core/ledger/sequencer";
import { replayStart } from "@simroot/core/feed/snapshot-replay";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { refuseSequencerReads } from "./support/store-faults.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const skewed = (ms: number): Ports => ({ ...runtime.ports, now: () => new Date(Date.now() + ms) });
const minutes = (n: number) => new Date(Date.now() + n * 60_000).toISOString();

/** Feed versions 1, 2, ... of `times` (epoch ms), as sequencers wrote them: all the replay reads of them. */
async function sequenced(tenantId: string, times: readonly number[]) {
  for (const [index, time] of times.entries())
    await runtime.ports.db.send(
      new PutCommand({
        TableName: runtime.ports.tables.audit,
        Item: { pk: feedPartition(tenantId), sk: feedSortKey(index + 1), version: index + 1, time: new Date(time).toISOString() },
      }),
    );
}

describe("instances whose clocks differ", () => {
  it("stop a grant revoked on an instance 5 minutes fast at once, not when that instance's clock said", async () => {
    const tenant = await tenantClient(runtime);
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208019990000105", labels: { fleet: "meters" } })).json;
    const grant = (
      await tenant.call("POST", "/v1/grants", {
        principal: "support",
        target: { selector: { matchLabels: { fleet: "meters" } } },
        destinations: [{ cidr: "10.8.0.0/24", ports: [22], protocol: "tcp" }],
        notBefore: minutes(-60),
        notAfter: minutes(60),
      })
    ).json;
    const ssh = async () =>
      (
        await tenant.call("POST", "/v1/decisions/evaluate", {
          device: { deviceId: device.id },
          destination: { ip: "10.8.0.1" },
          port: 22,
          protocol: "tcp",
          bearer: "cellular",
          principal: "support",
        })
      ).json.allow;
    expect(await ssh()).toBe(true);
    // The revocation lands on an API instance 5 minutes fast: its `revokedAt` is 5 minutes ahead.
    const fast = createApp({ ports: () => skewed(5 * 60_000), feedSigner: async () => memorySigner(), health: {} });
    const revoked = await fast.request(`/v1/grants/${grant.id}/revoke`, {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.token}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(revoked.status).toBe(200);
    expect((await tenant.call("GET", `/v1/grants/${grant.id}`)).json.status).toBe("revoked");
    // Judged on an instance on time (as a PEP compiles it too): no longer allowed.
    expect(await ssh()).toBe(false);
  });

  it("sequence a change its committer, 60 s fast, never sequenced within seconds, as for a committer on time", async () => {
    const tenantId = "ten_clocks_backstop_fast";
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    refuseSequencerReads(client, () => true);
    const ports: Ports = { ...portsFor(client, runtime.ports.tables, runtime.bus), now: () => new Date(Date.now() + 60_000) };
    const committed = registerDevice(ports, { tenantId, actor: "system:test", requestId: "req_test" }, { imsi: "208010000010501" });
    committed.catch(() => {});
    try {
      // The history reader, the feed's backstop, waits 2 s past a record's time (by its committer's clock) before it
      // sequences it: not the committer's 60 s.
      await expect
        .poll(async () => (await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16)).version, {
          timeout: 8_000,
          interval: 200,
        })
        .toBeGreaterThan(0);
    } finally {
      await committed.catch(() => {});
      client.destroy();
    }
  }, 20_000);

  it("do not let a retry act again within the request's time when the first instance's clock was 35 s slow", async () => {
    const key = `clocks-${Date.now()}`;
    expect((await claimIdempotencyKey(skewed(-35_000), "scope_clocks", key, "fp")).kind).toBe("claimed");
    // The client's retry 26 s later (within the API's 30 s timeout), on an instance on time.
    expect((await claimIdempotencyKey(skewed(26_000), "scope_clocks", key, "fp")).kind).toBe("in_progress");
  });

  it("replay the version a snapshot is labelled with, on an instance 15 s fast (the one the index may not list yet)", async () => {
    const tenant = await tenantClient(runtime);
    await tenant.call("POST", "/v1/devices", { imsi: "208019990000106" });
    const headOf = () => readFeedHead(runtime.ports.db, runtime.ports.tables, tenant.tenant.id, 16);
    await expect.poll(async () => (await headOf()).version, { timeout: 5_000, interval: 50 }).toBeGreaterThan(0);
    const { version } = await headOf();
    expect(await replayStart(runtime.ports, tenant.tenant.id, version, Date.now())).toBeLessThan(version);
    // The snapshot read its version on an instance 15 s fast, and says so in its cursor.
    const fast = skewed(15_000);
    expect(await replayStart(fast, tenant.tenant.id, version, fast.now().getTime())).toBeLessThan(version);
  });

  it("replay the version before a snapshot's, sequenced a second earlier by an instance on time, when one 15 s fast sequenced the snapshot's (review 106)", async () => {
    const tenantId = "ten_clocks_replay_sequencers";
    const now = Date.now();
    // Versions as sequencers wrote them: the fourth a second ago by a clock on time, the fifth now by one 15 s fast.
    const times = [now - 60_000, now - 40_000, now - 20_000, now - 1_000, now + 14_000];
    await sequenced(tenantId, times);
    // A snapshot of version 5 read now by an instance on time: its replay carries version 4.
    expect(await replayStart(runtime.ports, tenantId, 5, now)).toBeLessThan(4);
  });

  it("hand out no replay position below the floor another instance checks it against, from an instance 90 s slow (review 107)", async () => {
    const tenantId = "ten_clocks_replay_floor";
    const now = Date.now();
    // Eighty versions, one a second, the last now.
    await sequenced(
      tenantId,
      Array.from({ length: 80 }, (_, index) => now - (79 - index) * 1000),
    );
    // The snapshot begun on an instance 90 s slow; the floor computed on one on time (replayFloor: began 0, 2 s slack).
    const slow = skewed(-90_000);
    const genuine = await replayStart(slow, tenantId, 80, slow.now().getTime());
    const floor = await replayStart(skewed(1_000), tenantId, 80, 0, 2_000);
    expect(genuine).toBeGreaterThanOrEqual(floor);
    // And the floor is the same whichever clock computes it.
    expect(await replayStart(slow, tenantId, 80, 0, 2_000)).toBe(floor);
  });

  it("leave revoked and ended grants out of a snapshot, however many the tenant made (review 113)", async () => {
    const tenant = await tenantClient(runtime);
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208019990000113" })).json;
    const grant = (notAfter: string) => ({
      principal: "vendor:acme/jane",
      target: { deviceId: device.id },
      destinations: [{ cidr: "10.8.0.0/24", ports: [22], protocol: "tcp" }],
      notBefore: minutes(-5),
      notAfter,
    });
    const post = async (path: string, body: unknown) => {
      const answer = await tenant.call("POST", path, body);
      expect(answer.status, answer.text).toBeLessThan(300);
      return answer.json as { id: string };
    };
    const live = (await post("/v1/grants", grant(minutes(120)))).id;
    const revoked: string[] = [];
    for (let n = 0; n < 5; n++) {
      const { id } = await post("/v1/grants", grant(minutes(120)));
      await post(`/v1/grants/${id}/revoke`, { reason: "done" });
      revoked.push(id);
    }
    const ended = (await post("/v1/grants", grant(minutes(30)))).id;
    // The snapshot is taken an hour on (an instance an hour fast): the grant of 30 minutes has ended, and the snapshot's
    // replay of the changes of its last seconds holds none of these, so its listing of the tenant's grants alone carries
    // them.
    const later = createApp({ ports: () => skewed(3_600_000), feedSigner: async () => memorySigner(), health: {} });
    const answer = await later.request("/v1/feed?limit=10", { headers: { authorization: `Bearer ${tenant.token}` } });
    expect(answer.status).toBe(200);
    const { entries } = (await answer.json()) as { entries: { kind: string; key: string }[] };
    expect(entries.filter((entry) => entry.kind === "grant").map((entry) => entry.key)).toEqual([live]);
    // They are all still listed, with their status.
    const statuses = Object.fromEntries(
      (await tenant.call("GET", "/v1/grants")).json.items.map((g: { id: string; status: string }) => [g.id, g.status]),
    );
    expect([statuses[live], statuses[ended], ...revoked.map((id) => statuses[id])]).toEqual([
      "active",
      "active",
      ...revoked.map(() => "revoked"),
    ]);
  });
});
