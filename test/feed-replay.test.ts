/**
 * The snapshot's replay phase when nothing was sequenced within its window (a tenant whose last
 * change is older than `snapshotReplaySeconds`): the snapshot ends without a replay. It was
 * a 500 (DynamoDB refuses a BETWEEN whose bounds are reversed) for every PEP that snapshotted a
 * quiet tenant, found by bench:feed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { feedSnapshot, memorySigner, portsFor, registerDevice, snapshotReplaySeconds } from "@simroot/core";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

describe("a snapshot of a quiet tenant", () => {
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
});
