import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { SimrootError } from "../error.ts";
import type { DomainEvent, Publisher } from "./event.ts";
import { toPutEventsEntry } from "./envelope.ts";

/** PutEvents takes at most 10 entries a call. */
const batchSize = 10;
const attempts = 4;

/** Publishes to an EventBridge bus, re-sending only the entries EventBridge reports as failed. */
export function eventBridgePublisher(busName: string, client = new EventBridgeClient({})): Publisher {
  return {
    async publish(events) {
      for (let start = 0; start < events.length; start += batchSize) {
        await putBatch(client, busName, events.slice(start, start + batchSize));
      }
    },
  };
}

async function putBatch(client: EventBridgeClient, busName: string, batch: readonly DomainEvent[]) {
  let pending = [...batch];
  for (let attempt = 1; pending.length > 0; attempt++) {
    const result = await client.send(
      new PutEventsCommand({ Entries: pending.map((event) => toPutEventsEntry(event, busName)) }),
    );
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
