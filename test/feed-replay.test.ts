/**
 * The snapshot's replay phase (snapshot-replay.ts): when nothing was sequenced within its window
 * (a tenant whose last change is older than `snapshotReplaySeconds`) the snapshot ends without a
 * replay (it was a 500: DynamoDB refuses a BETWEEN whose bounds are reversed, found by
 * bench:feed); when a key changed several times within the window, whatever the page size, the
 * pages leave it at its value at the snapshot's version (an address moving between two devices was
 * left with its earlier holder, found by test/cluster-write.test.ts under load).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyOperatorEvent,
  feedSnapshot,
  ingestedEvent,
  memorySigner,
  portsFor,
  registerDevice,
  snapshotReplaySeconds,
  type FeedEntry,
} from "@simroot/core";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

describe("the snapshot's replay", () => {
  it("lists the fleet and ends, when no feed version falls within the replay window", async () => {
    const tenantId = "ten_quiet";
    const ctx = { tenantId, actor: "system:test", requestId: "req_quiet" };
    const device = (await registerDevice(runtime.ports, ctx, { imsi: "208010000000777" })).value;
    // The same store, read a minute later: the last change is outside the replay window.
    const later = () => new Date(Date.now() + (snapshotReplaySeconds + 60) * 1000);
    const ports = portsFor(runtime.ports.db, runtime.ports.tables, runtime.bus, later);
    const signer = memorySigner();
    const pages = [];
    let cursor: string | undefined;
    do {
      const page = await feedSnapshot(ports, signer, tenantId, cursor, 100);
      pages.push(page);
      cursor = page.next;
    } while (cursor);
    expect(pages.at(-1)!.signed.head.last).toBe(true);
    expect(
      pages
        .flatMap((page) => page.entries)
        .filter((entry) => entry.kind === "device")
        .map((entry) => entry.key),
    ).toEqual([device.id]);
  });

  it("leaves an address moved back and forth within the window with its holder at the snapshot's version, whatever the page size", async () => {
    const tenantId = "ten_moves";
    const ctx = { tenantId, actor: "system:test", requestId: "req_moves" };
    const imsis = ["208010000000801", "208010000000802"];
    const devices = [];
    for (const imsi of imsis) devices.push((await registerDevice(runtime.ports, ctx, { imsi })).value);
    // 10.7.0.1 moves between the two devices six times (each a feed version), last to the second.
    for (let move = 0; move < 6; move++) {
      const normalized = {
        type: "sim.attached",
        dedupeKey: `move-${move}`,
        occurredAt: new Date(Date.UTC(2026, 10, 22, 8, 0, move)).toISOString(),
        device: { imsi: imsis[move % 2]! },
        sourceType: "test",
        data: { bearer: "cellular", ipv4: "10.7.0.1" },
      };
      const event = ingestedEvent({ ...ctx, actor: "source:src_moves" }, "src_moves", "simroot", normalized as never, new Date());
      expect((await applyOperatorEvent(runtime.ports, event)).value.outcome).toBe("applied");
    }
    const signer = memorySigner();
    for (let limit = 3; limit <= 24; limit++) {
      const view = new Map<string, FeedEntry["value"]>();
      let cursor: string | undefined;
      do {
        const page = await feedSnapshot(runtime.ports, signer, tenantId, cursor, limit);
        for (const entry of page.entries) view.set(`${entry.kind}|${entry.key}`, entry.value);
        cursor = page.next;
      } while (cursor);
      expect({ limit, holder: view.get("binding|10.7.0.1")?.deviceId }).toEqual({ limit, holder: devices[1]!.id });
    }
  });
});
