/**
 * EventBridge's PutEvents on the wire, up to the network boundary: a loopback server speaking the service's JSON
 * protocol, for the real SDK client (core's `eventBridgePublisher`). It accepts each entry, or answers the per-entry
 * error EventBridge would (`ErrorCode`, `ErrorMessage`) where the test says so; as EventBridge does, it refuses a whole
 * request of more than 10 entries or of entries over 256 KB in all (counted as EventBridge documents: "Calculating
 * PutEvents event entry size"; `requestBytes` gives another bound: AWS announced 1 MB in 2026, its guide says 256 KB). `putOnTheWire` is what the publisher puts for some events, each entry accepted.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { eventBridgePublisher, type DomainEvent } from "@simroot/core";

export interface PutEntry {
  readonly Source: string;
  readonly DetailType: string;
  readonly Detail: string;
  readonly Resources?: string[];
  readonly EventBusName?: string;
  readonly Time?: number;
}

/** An entry's size as EventBridge counts it: 14 bytes for a time, and the UTF-8 bytes of its source, type, detail and resources. */
const entryBytes = (entry: PutEntry) =>
  (entry.Time === undefined ? 0 : 14) +
  [entry.Source, entry.DetailType, entry.Detail, ...(entry.Resources ?? [])].reduce((sum, text) => sum + Buffer.byteLength(text ?? ""), 0);

/** What EventBridge answers for one entry it did not take. */
export interface EntryError {
  readonly ErrorCode: string;
  readonly ErrorMessage: string;
}

/** The answer to an entry: undefined accepts it. `attempt` counts the puts of the same entry (its `Detail`), from 1. */
export type EntryAnswer = (entry: PutEntry, attempt: number) => EntryError | undefined;

export interface LoopbackEventBridge {
  /** A real SDK client whose endpoint is the loopback server. */
  readonly client: EventBridgeClient;
  /** The entries it accepted, in order. */
  readonly accepted: PutEntry[];
  /** The PutEvents calls it answered. */
  calls(): number;
  close(): Promise<void>;
}

export async function loopbackEventBridge(
  answer: EntryAnswer = () => undefined,
  { requestBytes = 256 * 1024 }: { readonly requestBytes?: number } = {},
): Promise<LoopbackEventBridge> {
  const accepted: PutEntry[] = [];
  const attempts = new Map<string, number>();
  let calls = 0;
  const server = createServer(async (request: IncomingMessage, response) => {
    let body = "";
    for await (const chunk of request) body += chunk;
    calls += 1;
    response.setHeader("content-type", "application/x-amz-json-1.1");
    if (request.headers["x-amz-target"] !== "AWSEvents.PutEvents") {
      response.statusCode = 400;
      response.end(JSON.stringify({ __type: "UnknownOperationException", message: String(request.headers["x-amz-target"]) }));
      return;
    }
    const entries = (JSON.parse(body) as { Entries: PutEntry[] }).Entries;
    const refusal =
      entries.length > 10
        ? "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10"
        : entries.reduce((sum, entry) => sum + entryBytes(entry), 0) > requestBytes
          ? "Total size of the entries in the request is over the limit."
          : undefined;
    if (refusal) {
      response.statusCode = 400;
      response.end(JSON.stringify({ __type: "ValidationException", message: refusal }));
      return;
    }
    const results = entries.map((entry) => {
      const attempt = (attempts.get(entry.Detail) ?? 0) + 1;
      attempts.set(entry.Detail, attempt);
      const error = answer(entry, attempt);
      if (error) return error;
      accepted.push(entry);
      return { EventId: `ev-${accepted.length}` };
    });
    const failed = results.filter((result) => "ErrorCode" in result).length;
    response.end(JSON.stringify({ FailedEntryCount: failed, Entries: results }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = new EventBridgeClient({
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
  return {
    client,
    accepted,
    calls: () => calls,
    async close() {
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export async function putOnTheWire(events: readonly DomainEvent[]): Promise<PutEntry[]> {
  const bus = await loopbackEventBridge();
  try {
    await eventBridgePublisher("simroot-test", bus.client).publish(events);
  } finally {
    await bus.close();
  }
  return bus.accepted;
}
