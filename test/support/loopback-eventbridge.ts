/**
 * EventBridge's PutEvents on the wire, up to the network boundary: what core's `eventBridgePublisher` puts for some
 * events, as a loopback server speaking the service's JSON protocol receives it (each entry accepted).
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
}

export async function putOnTheWire(events: readonly DomainEvent[]): Promise<PutEntry[]> {
  const received: PutEntry[] = [];
  const server = createServer(async (request: IncomingMessage, response) => {
    let body = "";
    for await (const chunk of request) body += chunk;
    const entries = (JSON.parse(body) as { Entries: PutEntry[] }).Entries;
    received.push(...entries);
    response.setHeader("content-type", "application/x-amz-json-1.1");
    response.end(JSON.stringify({ FailedEntryCount: 0, Entries: entries.map((_, n) => ({ EventId: `ev-${n}` })) }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = new EventBridgeClient({
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
  try {
    await eventBridgePublisher("simroot-test", client).publish(events);
  } finally {
    client.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
  return received;
}
