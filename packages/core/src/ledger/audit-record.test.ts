import { marshall } from "@aws-sdk/util-dynamodb";
import { describe, expect, it, vi } from "vitest";
import { tableNames } from "../config.ts";
import { domainEvent } from "../event/event.ts";
import { eventsOfStream } from "../outbox/outbox.ts";
import { auditItem, auditRecordSchema, recordOfItem, unhashed } from "./audit-record.ts";
import { chainHash } from "./chain.ts";

const ctx = {
  tenantId: "ten_01M92KFE5ATXKZ8GY18SNVRKCC",
  actor: "source:src_01M92KFE5ATXKZ8GY18SNVRKCD",
  requestId: "req_01M92KFE5ATXKZ8GY18SNVRKCE",
};
const device = "dev_01M92KFE5BY5JBHTV3225AR5WK";
const event = domainEvent(
  ctx,
  "sim.attached",
  device,
  { bearer: "cellular", ipv4: "10.1.2.3", apn: "iot.example" },
  new Date("2026-12-05T08:00:00Z"),
);
const feed = [
  { kind: "device", key: device, value: { id: device, state: "active" } },
  { kind: "binding", key: "10.1.2.3", value: { deviceId: device, address: "10.1.2.3", bearer: "cellular" }, rev: 1796457609668 },
];
const leases = [{ address: "10.1.2.3", at: "2026-12-05T08:00:00.000Z", edge: "start" as const, bearer: "cellular", deviceId: device }];
const { put, hash } = auditItem(tableNames("t-"), event, 3, 7, "0".repeat(64), feed, 86_400, leases);
const item = put.Put!.Item as Record<string, unknown>;

/** Every binary attribute of an image as a Lambda event carries it: base64 text. */
const asLambdaEvent = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(asLambdaEvent);
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (typeof value === "object" && value !== null)
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, asLambdaEvent(inner)]));
  return value;
};

describe("an audit record as stored", () => {
  it("keeps its data, feed changes and lease edges in one deflated body, and opens to the record its hash covers", () => {
    expect(item.body).toBeInstanceOf(Uint8Array);
    expect(["data", "feed", "leases"].filter((field) => field in item)).toEqual([]);
    const record = auditRecordSchema.parse(recordOfItem(item));
    expect(record).toMatchObject({ data: event.data, feed, seq: 7, shard: 3 });
    expect(record.leases).toEqual(leases.map(({ deviceId: _deviceId, ...edge }) => edge));
    expect(chainHash(record.prevHash, unhashed(record))).toBe(hash);
  });

  it("gives the outbox the same event whether the stream hands binary attributes over as bytes or, as Lambda does, as base64", () => {
    const image = marshall(item);
    const streamed = eventsOfStream([{ eventName: "INSERT", dynamodb: { NewImage: image, SequenceNumber: "1" } }]);
    const fromLambda = eventsOfStream([
      { eventName: "INSERT", dynamodb: { NewImage: asLambdaEvent(image) as typeof image, SequenceNumber: "1" } },
    ]);
    expect(streamed.map(({ event }) => event)).toEqual([{ ...event, data: event.data }]);
    expect(fromLambda.map(({ event }) => event)).toEqual(streamed.map(({ event }) => event));
    expect(fromLambda[0]!.record.feed).toEqual(feed);
  });

  it("is malformed when its body does not open, or carries fields beside it", () => {
    for (const altered of [
      { ...item, body: new Uint8Array([1, 2, 3]) },
      { ...item, data: { bearer: "wifi" } },
      { ...item, feed: [] },
    ]) {
      expect(auditRecordSchema.safeParse(recordOfItem(altered)).success).toBe(false);
    }
    // Records written before the body keep their fields as they are.
    const { body: _body, ...fields } = item;
    expect(auditRecordSchema.parse(recordOfItem({ ...fields, data: event.data, feed })).feed).toEqual(feed);
  });

  it("is said by the outbox when a shard's record on the stream does not parse, not passed over in silence (review 103)", () => {
    const said: string[] = [];
    const spy = vi.spyOn(console, "error").mockImplementation((line: unknown) => void said.push(String(line)));
    try {
      const broken = marshall({ ...item, body: new Uint8Array([1, 2, 3]) });
      // A feed version beside it is no event, and nothing to say.
      const version = marshall({ pk: `T#${ctx.tenantId}#feed`, sk: "000000000001", version: 1 });
      const streamed = eventsOfStream([
        { eventName: "INSERT", dynamodb: { NewImage: broken, SequenceNumber: "1" } },
        { eventName: "INSERT", dynamodb: { NewImage: version, SequenceNumber: "2" } },
      ]);
      expect(streamed).toEqual([]);
    } finally {
      spy.mockRestore();
    }
    expect(said.map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({ level: "error", component: "outbox", pk: item.pk, sk: item.sk, eventId: event.id }),
    ]);
  });
});
