/**
 * What the publisher does with an entry past 256 KiB: it sends it, alone in its request, and EventBridge says whether it
 * takes it. Its guide bounds an entry at 256 KB; AWS announced 1 MB for existing buses in 2026. The publisher had
 * refused such an entry itself, and the outbox made it a dead letter, lost to every consumer though the bus would have
 * taken it (review 74). One EventBridge refuses (a request of that one entry refused as invalid) is refused for good.
 */
import { describe, expect, it } from "vitest";
import { domainEvent, eventBridgePublisher, EventsRefused } from "@simroot/core";
import { loopbackEventBridge } from "./support/loopback-eventbridge.ts";

const ctx = { tenantId: "ten_a", actor: "key:k", requestId: "req" };
const detailIds = (entries: readonly { Detail: string }[]) => entries.map((entry) => (JSON.parse(entry.Detail) as { id: string }).id);

async function publish(requestBytes: number, events: Parameters<ReturnType<typeof eventBridgePublisher>["publish"]>[0]) {
  const bus = await loopbackEventBridge(undefined, { requestBytes });
  try {
    const refused = await eventBridgePublisher("simroot-test", bus.client)
      .publish(events)
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    return { refused, accepted: detailIds(bus.accepted) };
  } finally {
    await bus.close();
  }
}

describe("an entry past 256 KiB", () => {
  it("is sent, and published where the bus takes it (1 MB)", async () => {
    const big = domainEvent(ctx, "automation.rule-updated", "rule_1", { pattern: "x".repeat(300 * 1024) }, new Date());
    const small = domainEvent(ctx, "device.registered", "dev_1", {}, new Date());
    expect(await publish(1024 * 1024, [big, small])).toEqual({ refused: undefined, accepted: [big.id, small.id] });
  });

  it("is refused for good where the bus refuses its request as invalid, and the others are published", async () => {
    const big = domainEvent(ctx, "automation.rule-updated", "rule_1", { pattern: "x".repeat(300 * 1024) }, new Date());
    const small = domainEvent(ctx, "device.registered", "dev_1", {}, new Date());
    const { refused, accepted } = await publish(256 * 1024, [small, big, small]);
    expect(refused).toBeInstanceOf(EventsRefused);
    expect((refused as EventsRefused).refusals.map((r) => [r.code, r.events.map((e) => e.id)])).toEqual([["EntryTooLarge", [big.id]]]);
    expect(accepted).toEqual([small.id, small.id]);
  });
});
