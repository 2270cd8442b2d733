/**
 * A subscription may point its deliveries at the deployment's own ingestion (its URL is public in AWS), and a tenant
 * may make a source that trusts the subscription's signing key. What keeps that from a loop (event, delivery, fact,
 * event, ...) is that no ingestion format takes a delivery's body, simroot's Standard Webhooks `{ type, timestamp,
 * data }`, as a fact (review 69). A format added later that took any JSON body (a pass-through of unknown events as
 * `source.unhandled`, say) would open the loop: this fails then.
 */
import { describe, expect, it } from "vitest";
import type { BusEnvelope } from "../../event/envelope.ts";
import { deliveryBody } from "../../webhook/delivery.ts";
import { adapters } from "./index.ts";

/** A delivery's body, its event's data shaped as much like a fact of every format as it can be. */
function delivered(type: string): string {
  const time = "2026-12-05T12:00:00.000Z";
  const fact = {
    dedupeKey: "k1",
    occurredAt: time,
    device: { imsi: "208011234567890" },
    sourceType: "vendor.event",
    bearer: "cellular",
    id: "3f1c2d4e-0000-4000-8000-000000000001",
    event_type: "SessionStart",
    imsi: "208011234567890",
  };
  const envelope = {
    version: "0",
    id: "evt_01JD3Q4ZK8W9X2V5N6M7P8R9ST",
    "detail-type": type,
    source: "simroot",
    account: "local",
    time,
    region: "local",
    resources: [],
    detail: {
      id: "evt_01JD3Q4ZK8W9X2V5N6M7P8R9ST",
      type,
      tenantId: "ten_x",
      subject: "dev_x",
      time,
      actor: "a",
      requestId: "r",
      data: fact,
    },
  } as unknown as BusEnvelope;
  return deliveryBody(envelope);
}

describe("a delivery posted to simroot's own ingestion", () => {
  it.each(Object.keys(adapters))("is taken as no fact by the %s format", (format) => {
    for (const type of ["source.unhandled", "sim.attached", "device.quarantined", "webhook.updated", "facts.reported"]) {
      const body = delivered(type);
      const request = {
        method: "POST",
        url: "https://simroot.example/v1/ingest/src_x",
        headers: { "content-type": "application/json" },
        body,
        now: new Date(),
      };
      let accepted = 0;
      try {
        accepted = adapters[format as keyof typeof adapters].parse(request).filter((item) => item.ok).length;
      } catch {
        // Refused whole: nothing taken.
      }
      expect([type, accepted]).toEqual([type, 0]);
    }
  });
});
