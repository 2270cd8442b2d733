/**
 * Fuzzing `POST /v1/ingest/{sourceId}` for every format: random bytes, random JSON, and valid
 * sample payloads mutated (wrong types, huge strings, deep nesting, unicode, missing fields,
 * numbers as strings, nulls, odd keys), under garbage headers, sent with the source's real
 * credentials (signed over the mutated body, so the adapter's parser runs) or without.
 *
 * Every answer must be below 500, an error must be problem+json with a `type`, and a request
 * that is not accepted (202) must publish nothing and write nothing: only accepted events may
 * change state. What is accepted must then be applied, not dead-lettered.
 */
import { createHash, createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from "vitest";
import { readDevice } from "@simroot/core";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let busDirectory: string;
let runtime: TestRuntime;
let published: MockInstance<TestRuntime["bus"]["publish"]>;
let commands: MockInstance<(command: { constructor: { name: string } }) => Promise<unknown>>;
beforeAll(async () => {
  // A journaled bus, as `npm start` runs it: every published event is serialized, as EventBridge's publisher does too.
  busDirectory = mkdtempSync(join(tmpdir(), "simroot-ingest-fuzz-"));
  runtime = await startTestRuntime({ dataDir: busDirectory });
  published = vi.spyOn(runtime.bus, "publish");
  commands = vi.spyOn(runtime.ports.db as unknown as { send: (command: { constructor: { name: string } }) => Promise<unknown> }, "send");
});
afterAll(async () => {
  await runtime?.stop();
  if (busDirectory) rmSync(busDirectory, { recursive: true, force: true });
});

/** Requests per format; the whole file stays well under 30 s. */
const numRuns = 200;
// A fixed seed keeps the run reproducible (and its coverage check stable); change it to explore further.
const fuzzSeed = Number(process.env.FUZZ_SEED ?? 20261122);

// --- the device every sample names ----------------------------------------------------------

const imsi = "208011234567890";
const iccid = "8944500102198304826";
const msisdn = "+491701234567";
const eid = "89049032123451234512345678901235";
const imei = "490154203237518";
const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();

// --- one valid body per format --------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Format = "simroot" | "camara" | "nef" | "datastreamer" | "supersim" | "eim";

/** Valid bodies (plain JSON data) the mutations start from. */
const samples: Record<Format, () => unknown[]> = {
  simroot: () => [
    [
      {
        type: "sim.attached",
        dedupeKey: "fuzz-1",
        occurredAt: minutesAgo(3),
        device: { imsi },
        sourceType: "sim.attached",
        data: { bearer: "cellular", rat: "NR", apn: "fleet.iot", ipv4: "10.20.0.7" },
      },
      {
        type: "source.unhandled",
        dedupeKey: "fuzz-2",
        occurredAt: minutesAgo(2),
        device: { imsi },
        sourceType: "vendor.thing",
        data: { sourceType: "vendor.thing", summary: { note: "x" } },
      },
    ],
    {
      type: "device.roaming-changed",
      dedupeKey: "fuzz-3",
      occurredAt: minutesAgo(1),
      device: { iccid },
      sourceType: "roaming",
      data: { roaming: true, mcc: "262" },
    },
  ],
  camara: () => [
    {
      specversion: "1.0",
      id: "evt-1",
      source: "https://camara.example",
      type: "org.camaraproject.device-roaming-status-subscriptions.v0.roaming-change-country",
      time: minutesAgo(2),
      data: {
        device: { phoneNumber: msisdn, ipv4Address: { publicAddress: "84.125.93.10", privateAddress: "10.20.0.7", publicPort: 59765 } },
        countryCode: 262,
        countryName: ["DE"],
        subscriptionId: "s-1",
      },
    },
    [
      {
        specversion: "1.0",
        id: "evt-2",
        source: "https://camara.example",
        type: "org.camaraproject.iot-sim-fraud-prevention.v0.area-change",
        data: { device: { phoneNumber: msisdn }, area: { areaType: "CIRCLE", radius: 2000 }, subscriptionId: "s-2" },
      },
      {
        specversion: "1.0",
        id: "evt-3",
        source: "https://camara.example",
        type: "org.camaraproject.iot-sim-fraud-prevention.v0.imei-change",
        data: { device: { phoneNumber: msisdn }, imei: "35-209900-176148-1" },
      },
    ],
  ],
  nef: () => [
    {
      subscription: "https://nef.example/3gpp-monitoring-event/v1/scs/subscriptions/1",
      monitoringEventReports: [
        {
          msisdn,
          monitoringType: "PDN_CONNECTIVITY_STATUS",
          eventTime: minutesAgo(2),
          ratType: "EUTRA",
          plmnId: { mcc: "262", mnc: "01" },
          pdnConnInfoList: [{ status: "CREATED", apn: "fleet.iot", pdnType: "IPV4V6", ipv4Addr: "10.20.0.7", ipv6Addrs: ["2001:db8::7"] }],
        },
        { msisdn, monitoringType: "ROAMING_STATUS", roamingStatus: true, plmnId: { mcc: "208", mnc: "01" }, eventTime: minutesAgo(1) },
        { msisdn, monitoringType: "LOCATION_REPORTING", locationInfo: { cellId: "26201AB12CD34", ageOfLocationInfo: 2 } },
      ],
    },
  ],
  datastreamer: () => [
    [
      {
        id: 137112624332866,
        timestamp: "2026-02-27T08:38:02.000+0000",
        event_type: { id: 3, description: "Create PDP Context" },
        event_source: { id: 0, description: "Network" },
        description: "New PDP Context successfully activated",
        endpoint: { imei: "4901542032375101", ip_address: "100.102.41.209" },
        sim: { iccid, msisdn: "491701234567" },
        imsi: { imsi },
        detail: {
          country: { mcc: "262", iso_code: "de" },
          pdp_context: { apn: "em", ue_ip_address: "100.112.45.209", rat_type: 6, imeisv: "4901542032375101", mcc: "262", mnc: "02" },
        },
      },
      {
        id: "201370709",
        timestamp: "2026-02-27T09:00:00Z",
        event_type: { id: 1, description: "Update location" },
        sim: { iccid },
        imsi: { imsi },
        detail: { country: { mcc: "262", iso_code: "de" } },
      },
    ],
  ],
  supersim: () => [
    [
      {
        specversion: "1.0",
        type: "com.twilio.iot.supersim.connection.data-session.started",
        source: "/v1/Sims/HS0001",
        id: "EZ0001",
        time: minutesAgo(2),
        data: {
          sim_iccid: iccid,
          imsi,
          imei,
          ip_address: "100.65.109.189",
          apn: "super",
          rat_type: "4G LTE",
          timestamp: minutesAgo(2),
          network: { mcc: "262", mnc: "01", friendly_name: "Telekom", iso_country: "DE" },
          error: null,
        },
      },
    ],
  ],
  eim: () => [
    {
      eid,
      notifications: [
        { seqNumber: 10, operation: "install", iccid: `${iccid}F`, result: "success", timestamp: minutesAgo(3) },
        { seqNumber: 11, operation: "enable", iccid },
      ],
    },
    {
      header: { functionRequesterIdentifier: "smdp.example.com", functionCallIdentifier: "TX-1" },
      eid,
      iccid,
      profileType: "IoT",
      timestamp: minutesAgo(2),
      notificationPointId: 4,
      notificationPointStatus: { status: "Failed", statusCodeData: { subjectCode: "8.2.1", reasonCode: "3.8", message: "Refused" } },
    },
    { pendingNotification: "vzeBAA==" },
  ],
};

// --- mutations --------------------------------------------------------------------------------

type Path = (string | number)[];

function pathsOf(value: Json, at: Path = []): Path[] {
  if (Array.isArray(value)) return [at, ...value.flatMap((item, index) => pathsOf(item, [...at, index]))];
  if (value !== null && typeof value === "object")
    return [at, ...Object.entries(value).flatMap(([key, item]) => pathsOf(item, [...at, key]))];
  return [at];
}

/** `change` gets the value at `path` and returns its replacement, or undefined to remove it. */
function changedAt(root: Json, path: Path, change: (current: Json) => Json | undefined): Json {
  if (path.length === 0) return change(root) ?? null;
  const copy = structuredClone(root) as Record<string | number, Json>;
  let parent: Record<string | number, Json> = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, Json>;
  const last = path[path.length - 1]!;
  const next = change(parent[last]!);
  if (next === undefined) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else {
    Object.defineProperty(parent, last, { value: next, enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

/** Stands for deep nesting, spliced in as text after JSON.stringify (which would overflow the stack building it). */
const deepMarker = (depth: number, kind: "array" | "object") => `@@deep-${depth}-${kind}@@`;
const withDeepNesting = (text: string) =>
  text.replace(/"@@deep-(\d+)-(array|object)@@"/g, (_, depth: string, kind: string) =>
    kind === "array"
      ? `${"[".repeat(Number(depth))}1${"]".repeat(Number(depth))}`
      : `${'{"a":'.repeat(Number(depth))}1${"}".repeat(Number(depth))}`,
  );

const lowSurrogates = fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)), maxLength: 8 });
const oddKey = fc.oneof(fc.constantFrom("__proto__", "constructor", "toString", "", "0", "a.b", "id"), fc.string({ maxLength: 12 }));

type Change = (current: Json) => Json | undefined;
const changeArb: fc.Arbitrary<Change> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Change>(() => undefined) },
  { weight: 3, arbitrary: fc.constant<Change>(() => null) },
  {
    weight: 4,
    arbitrary: fc.jsonValue({ maxDepth: 3 }).map(
      (value): Change =>
        () =>
          value as Json,
    ),
  },
  { weight: 3, arbitrary: fc.constant<Change>((current) => (typeof current === "string" ? current : (JSON.stringify(current) ?? ""))) },
  {
    weight: 2,
    arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(-1, 0, 2 ** 53 + 1, 1e308, -1e-308)).map(
      (value): Change =>
        () =>
          value,
    ),
  },
  {
    weight: 2,
    arbitrary: fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), fc.string({ unit: "grapheme", maxLength: 40 }), lowSurrogates).map(
      (value): Change =>
        () =>
          value,
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(300, 70_000).map(
      (length): Change =>
        () =>
          "é9".repeat(length),
    ),
  },
  { weight: 1, arbitrary: fc.constant<Change>(() => "x".repeat(1024 * 1024 + 10)) },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.constantFrom(40, 2_000, 100_000), fc.constantFrom("array" as const, "object" as const)).map(
      ([depth, kind]): Change =>
        () =>
          deepMarker(depth, kind),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(oddKey, fc.jsonValue({ maxDepth: 2 })).map(
      ([key, value]): Change =>
        (current) =>
          Array.isArray(current)
            ? [...current, value as Json]
            : current !== null && typeof current === "object"
              ? Object.defineProperty({ ...current }, key, { value, enumerable: true, writable: true, configurable: true })
              : { [key]: value as Json },
    ),
  },
);

function mutated(format: Format): fc.Arbitrary<string> {
  const sample = fc.nat().map((pick) => {
    const all = samples[format]();
    return all[pick % all.length] as Json;
  });
  const mutations = fc.array(fc.tuple(fc.nat(), changeArb), { maxLength: 4 });
  return fc.tuple(sample, mutations).map(([start, changes]) => {
    let value = start;
    for (const [at, change] of changes) {
      const paths = pathsOf(value);
      value = changedAt(value, paths[at % paths.length]!, change);
    }
    return withDeepNesting(JSON.stringify(value));
  });
}

/** eIM DER bodies: random bytes behind the tags of the PendingNotification choices. */
const pendingNotification = fc
  .tuple(fc.constantFrom([0xbf, 0x37], [0x30], [0xa1], [0xa0], [0xbf, 0x2f], []), fc.uint8Array({ maxLength: 120 }))
  .map(([tag, rest]) => JSON.stringify({ pendingNotification: Buffer.from([...tag, rest.length, ...rest]).toString("base64") }));

/** The body as bytes on the wire. */
function bodyArb(format: Format): fc.Arbitrary<Uint8Array> {
  const text = (arbitrary: fc.Arbitrary<string>) => arbitrary.map((value) => new TextEncoder().encode(value));
  return fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    { weight: 1, arbitrary: text(fc.string({ unit: "binary", maxLength: 200 })) },
    { weight: 2, arbitrary: text(fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value))) },
    { weight: 6, arbitrary: text(mutated(format)) },
    { weight: format === "eim" ? 2 : 0, arbitrary: text(pendingNotification) },
  );
}

// --- headers ----------------------------------------------------------------------------------

/** What Headers accepts as a value: bytes, no controls. */
const headerValue = fc.string({
  unit: fc
    .integer({ min: 0x20, max: 0xff })
    .filter((code) => code !== 0x7f)
    .map((code) => String.fromCharCode(code)),
  maxLength: 80,
});
const base64Of = (length: number) =>
  fc.uint8Array({ minLength: length, maxLength: length }).map((bytes) => Buffer.from(bytes).toString("base64"));
const nowSeconds = () => Math.floor(Date.now() / 1000);

const garbageHeaders = fc.record(
  {
    "content-type": fc.oneof(
      fc.constantFrom(
        "application/json",
        "application/cloudevents+json",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "",
      ),
      headerValue,
    ),
    authorization: fc.oneof(
      headerValue,
      headerValue.map((token) => `Bearer ${token}`),
      base64Of(24).map((token) => `Bearer ${token}`),
      fc.tuple(headerValue, headerValue).map(([user, password]) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`),
      headerValue.map((text) => `Basic ${text}`),
    ),
    "webhook-id": fc.oneof(headerValue, fc.constantFrom("msg_1", "msg.1", "")),
    "webhook-timestamp": fc.oneof(
      headerValue,
      fc.integer({ min: -1000, max: 1000 }).map((offset) => String(nowSeconds() + offset)),
      fc.constantFrom("1e3", "-1", "99999999999999", "0"),
    ),
    "webhook-signature": fc.oneof(
      headerValue,
      base64Of(32).map((signature) => `v1,${signature}`),
      base64Of(64).map((signature) => `v1a,${signature}`),
      fc
        .array(fc.tuple(fc.constantFrom("v1", "v1a", "v2", ""), headerValue), { maxLength: 4 })
        .map((parts) => parts.map(([version, value]) => `${version},${value}`).join(" ")),
    ),
    "x-twilio-signature": fc.oneof(headerValue, base64Of(20)),
    "x-eid": fc.oneof(headerValue, fc.constantFrom(eid, "89049032123451234512345678901234", "")),
  },
  { requiredKeys: [] },
);

// --- the requests -----------------------------------------------------------------------------

type Auth = "valid" | "garbage" | "none";
interface FuzzCase {
  readonly body: Uint8Array;
  readonly headers: Record<string, string>;
  readonly auth: Auth;
  /** Extra query parameters (the eim adapter reads `eid`; supersim signs the whole URL). */
  readonly query: Record<string, string>;
}

const caseArb = (format: Format): fc.Arbitrary<FuzzCase> =>
  fc.record({
    body: bodyArb(format),
    headers: garbageHeaders,
    auth: fc.constantFrom<Auth>("valid", "valid", "garbage", "none"),
    query: fc.record(
      {
        eid: fc.oneof(fc.constant(eid), fc.string({ maxLength: 40 })),
        bodySHA256: fc.oneof(
          fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 64, maxLength: 64 }),
          fc.string({ maxLength: 10 }),
        ),
      },
      { requiredKeys: [] },
    ),
  });

interface Source {
  readonly format: Format;
  readonly ingestPath: string;
  readonly credentials: Record<string, string>;
}

/** Path and headers for a case: with `valid`, the source's real credentials over the body as the server will read it. */
function requestFor(source: Source, fuzz: FuzzCase): { path: string; headers: Record<string, string> } {
  // Senders sign the bytes they send (Standard Webhooks, Twilio's bodySHA256): invalid UTF-8 and BOMs included.
  const query =
    fuzz.auth === "valid" && source.format === "supersim"
      ? { ...fuzz.query, bodySHA256: createHash("sha256").update(fuzz.body).digest("hex") }
      : fuzz.query;
  const search = new URLSearchParams(query).toString();
  const path = `${source.ingestPath}${search ? `?${search}` : ""}`;
  const headers = fuzz.auth === "none" ? onlyHeaders(fuzz.headers, ["content-type", "x-eid"]) : { ...fuzz.headers };
  if (fuzz.auth !== "valid") return { path, headers };
  const { credentials } = source;
  switch (source.format) {
    case "simroot": {
      const id = `msg_${Math.random().toString(36).slice(2)}`;
      const timestamp = String(Math.floor(Date.now() / 1000));
      const key = Buffer.from(credentials.webhookSecret!.replace(/^whsec_/, ""), "base64");
      const signature = createHmac("sha256", key).update(`${id}.${timestamp}.`).update(fuzz.body).digest("base64");
      const signed = {
        "webhook-id": id,
        "webhook-timestamp": timestamp,
        "webhook-signature": `v1,${signature}`,
        "content-type": "application/json",
      };
      return { path, headers: { ...headers, ...signed, ...onlyHeaders(headers, ["content-type"]) } };
    }
    case "camara":
    case "nef":
    case "eim":
      return { path, headers: { ...headers, authorization: `Bearer ${credentials.bearerToken}` } };
    case "datastreamer":
      return {
        path,
        headers: {
          ...headers,
          authorization: `Basic ${Buffer.from(`${credentials.basicUser}:${credentials.basicPassword}`).toString("base64")}`,
        },
      };
    case "supersim": {
      const url = new URL(path, "http://localhost").toString();
      return {
        path,
        headers: { ...headers, "x-twilio-signature": createHmac("sha1", credentials.twilioAuthToken!).update(url).digest("base64") },
      };
    }
  }
}

function onlyHeaders(headers: Record<string, string>, names: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => names.includes(name)));
}

const isRead = (command: { constructor: { name: string } }) => /^(Get|BatchGet|TransactGet|Query|Scan)/.test(command.constructor.name);
/** Counting an authenticated request against its source's rate limit is not recording it. */
const isRateCount = (command: object) =>
  String((command as { input?: { Key?: { pk?: unknown } } }).input?.Key?.pk ?? "").startsWith("rate#");
/**
 * The feed's backstop taking on, or marking told, an earlier accepted change's versions (core ledger/catch-up.ts
 * `announceTrailing`): it runs beside the stream, up to a second after that change, so it can fall within a later
 * request. (Not the sequencer's head moves, which are updates of the same item.)
 */
const isTrailingNotice = (command: object) => {
  const input = (command as { constructor: { name: string }; input?: { Key?: { sk?: unknown }; UpdateExpression?: unknown } }).input;
  return (
    command.constructor.name === "UpdateCommand" &&
    input?.Key?.sk === "feed" &&
    /^SET (noticedVersion|trailingFor) /.test(String(input.UpdateExpression))
  );
};

// --- the property ---------------------------------------------------------------------------

const formats: Format[] = ["simroot", "camara", "nef", "datastreamer", "supersim", "eim"];

describe("fuzzed webhooks to POST /v1/ingest/{sourceId}", () => {
  // 200 requests, each settled through the applier: 6 to 13 s alone, more beside the rest of the suite on 2 cores.
  it.each(formats)(
    "%s: never a 5xx, errors are problem+json, and only a 202 publishes or writes anything",
    async (format) => {
      const tenant = await tenantClient(runtime, `fuzz-${format}`);
      const created = await tenant.call("POST", "/v1/sources", {
        name: `fuzz ${format}`,
        format,
        ...(format === "supersim" ? { credentials: { twilioAuthToken: "f0e1d2c3b4a5968778695a4b3c2d1e0f" } } : {}),
      });
      expect(created.status).toBe(201);
      const source: Source = { format, ingestPath: created.json.source.ingestPath, credentials: created.json.credentials };
      const registered = await tenant.call("POST", "/v1/devices", { imsi, iccids: [iccid], msisdn, eid, imei, imeiLock: false });
      expect(registered.status).toBe(201);
      const deviceId: string = registered.json.id;
      /** Straight from the store: cheaper than the API, and what every state change goes through. */
      const revision = async () => (await readDevice(runtime.ports, registered.json.tenantId, deviceId))?.device.revision;

      await runtime.settled();
      /** The device's revision as of the last accepted request: nothing else may move it. */
      let knownRevision = await revision();
      expect(knownRevision).toBe(registered.json.revision);
      const statuses = new Map<number, number>();
      let acceptedEvents = 0;
      let reads = 0;

      await fc.assert(
        fc.asyncProperty(caseArb(format), async (fuzz) => {
          const { path, headers } = requestFor(source, fuzz);
          await runtime.settled();
          published.mockClear();
          commands.mockClear();

          const response = await runtime.app.request(path, { method: "POST", headers, body: fuzz.body });
          const text = await response.text();
          const json = JSON.parse(text);
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);

          expect(response.status, text).toBeLessThan(500);
          // Without the credentials the body is never parsed: only 401, or 413 from the body limit that comes first.
          if (fuzz.auth !== "valid") expect([401, 413], text).toContain(response.status);
          else expect(response.status, text).not.toBe(401);
          const events = published.mock.calls.flatMap(([batch]) => batch);
          const writes = commands.mock.calls
            .map(([command]) => command)
            .filter((command) => !isRead(command) && !isRateCount(command) && !isTrailingNotice(command));
          reads += commands.mock.calls.length - writes.length;
          if (response.status === 202) {
            const acceptedIds: string[] = json.accepted.map((item: { id: string }) => item.id);
            expect(events.filter((event) => event.origin === "ingest").map((event) => event.id)).toEqual(acceptedIds);
            acceptedEvents += acceptedIds.length;
            await runtime.settled();
            // Accepted means applied, duplicate, stale or parked: never an event the applier gives up on.
            expect(
              runtime.bus
                .deadLetters()
                .filter((letter) => acceptedIds.includes(letter.eventId))
                .map((letter) => letter.reason),
            ).toEqual([]);
            knownRevision = await revision();
            return;
          }
          expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
          expect(json.type).toMatch(/^urn:simroot:problem:./);
          expect(json.status).toBe(response.status);
          expect(events).toEqual([]);
          expect(writes.map((command) => command.constructor.name)).toEqual([]);
          await runtime.settled();
          expect(await revision()).toBe(knownRevision);
        }),
        { numRuns, seed: fuzzSeed },
      );

      await runtime.settled();
      // The fuzz reached every outcome: accepted, refused by the parser, refused by authentication.
      expect(Object.fromEntries(statuses)).toEqual(
        expect.objectContaining({ 202: expect.any(Number), 400: expect.any(Number), 401: expect.any(Number) }),
      );
      expect(acceptedEvents).toBeGreaterThan(0);
      expect(reads).toBeGreaterThan(0);
    },
    120_000,
  );
});
