import type { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { SimrootError } from "../error.ts";
import type { DomainEvent, Publisher } from "./event.ts";
import { toPutEventsEntry } from "./envelope.ts";
import { lazy, sdkClientSettings } from "../store/sdk-settings.ts";
import { packReported } from "../ingest/reported.ts";

/** PutEvents takes at most 10 entries and 256 KB a call. */
const batchSize = 10;
const batchBytes = 250 * 1024;
const attempts = 4;

/**
 * Publishes to an EventBridge bus, re-sending only the entries EventBridge reports as failed. The facts of one request
 * travel packed, as one entry (core ingest/reported.ts).
 */
export function eventBridgePublisher(busName: string, given?: EventBridgeClient): Publisher {
  // The client's package is loaded on first publish, not at module init (`lazy`).
  const bus = lazy(async () => {
    const { EventBridgeClient, PutEventsCommand } = await import("@aws-sdk/client-eventbridge");
    return { client: given ?? new EventBridgeClient(sdkClientSettings()), PutEventsCommand };
  });
  return {
    async publish(events, options) {
      const sdk = await bus();
      let batch: DomainEvent[] = [];
      let bytes = 0;
      for (const event of options?.alone ? events : packReported(events)) {
        const size =
          Buffer.byteLength(JSON.stringify(event)) +
          event.type.length +
          (options?.resources?.(event) ?? []).reduce((sum, resource) => sum + Buffer.byteLength(resource), 0) +
          64;
        if (batch.length === batchSize || (batch.length > 0 && bytes + size > batchBytes)) {
          await putBatch(sdk, busName, batch, options?.resources);
          batch = [];
          bytes = 0;
        }
        batch.push(event);
        bytes += size;
      }
      if (batch.length > 0) await putBatch(sdk, busName, batch, options?.resources);
    },
  };
}

async function putBatch(
  { client, PutEventsCommand: Put }: { client: EventBridgeClient; PutEventsCommand: typeof PutEventsCommand },
  busName: string,
  batch: readonly DomainEvent[],
  resources: (event: DomainEvent) => readonly string[] = () => [],
) {
  let pending = [...batch];
  for (let attempt = 1; pending.length > 0; attempt++) {
    const result = await client.send(new Put({ Entries: pending.map((event) => toPutEventsEntry(event, busName, resources(event))) }));
    if (!result.FailedEntryCount) return;
    pending = pending.filter((_, index) => result.Entries?.[index]?.ErrorCode !== undefined);
    if (attempt >= attempts) {
      throw new SimrootError("bus.publish_failed", "unavailable", "EventBridge refused some events", {
        detail: { eventIds: pending.map((event) => event.id) },
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
  }
}
