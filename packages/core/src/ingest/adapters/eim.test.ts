/**
 * The DER notifications are built here with asn1js, tag by tag, from SGP.22 `RSPDefinitions`
 * (osmocom/pysim pySim/esim/asn1/rsp/rsp.asn, AUTOMATIC TAGS): ProfileInstallationResult 'BF37'
 * { 'BF27' { transactionId '80', NotificationMetadata 'BF2F' { '80' seqNumber, '81' NotificationEvent,
 * '0C' notificationAddress, '5A' Iccid }, smdpOid '06', finalResult 'A2' { 'A0' success | 'A1' error
 * { '80' bppCommandId, '81' errorReason } } }, '5F37' signature } and OtherSignedNotification '30'
 * { 'BF2F', '5F37', euiccCertificate, eumCertificate }. The certificates are real X.509 built with
 * asn1js and signed with Node's crypto (Node's own X509Certificate parses them). The ES2+ bodies
 * follow SGP.22 §5.3.5 handleDownloadProgressInfo.
 */
import { generateKeyPairSync, sign, X509Certificate } from "node:crypto";
import * as asn1js from "asn1js";
import { describe, expect, it } from "vitest";
import { normalizedEventSchema, type NormalizedEvent } from "../../catalogue/catalogue.ts";
import type { AdapterItem, IngestRequest } from "../adapter.ts";
import { eimAdapter } from "./eim.ts";
import { decodePendingNotification } from "./eim-asn1.ts";
import { authFailure, ingestRequest, invalidBodyFailure, now, thrown } from "./test-support.ts";
const token = "eim-source-token-7f3a";
const eid = "89049032123451234512345678901235";
const otherEid = withEidCheckDigits("890490321234512345123456789099");
const iccid = "8944500102198304826";

// --- DER builders (asn1js) ----------------------------------------------------------------

const contextConstructed = (tagNumber: number, value: asn1js.BaseBlock[]) => new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber }, value });
const contextPrimitive = (tagNumber: number, bytes: Uint8Array) => new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber }, valueHex: bytes });
const applicationPrimitive = (tagNumber: number, bytes: Uint8Array) => new asn1js.Primitive({ idBlock: { tagClass: 2, tagNumber }, valueHex: bytes });
const integerContent = (value: number) => new Uint8Array(new asn1js.Integer({ value }).valueBlock.valueHexView);
const der = (block: asn1js.BaseBlock) => new Uint8Array(block.toBER());
const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
const octets = (length: number, fill: number) => new Uint8Array(length).fill(fill);

const operationBits = { install: 0, enable: 1, disable: 2, delete: 3 } as const;
type Operation = keyof typeof operationBits;

/** NotificationEvent BIT STRING, DER: one content byte, the trailing unused bits counted. */
function notificationEvent(...bits: number[]): Uint8Array {
  const highest = Math.max(...bits);
  return new Uint8Array([7 - highest, bits.reduce((byte, bit) => byte | (0x80 >> bit), 0)]);
}

/** EF.ICCID coding: BCD digits, nibbles swapped, padded with 'F' to 10 octets. */
function bcdIccid(digits: string): Uint8Array {
  const padded = digits.padEnd(20, "F");
  return new Uint8Array(Array.from({ length: 10 }, (_, index) => parseInt(padded[2 * index + 1]! + padded[2 * index]!, 16)));
}

function notificationMetadata(seqNumber: number, operation: Operation, options: { iccid?: string | null; bits?: number[]; extension?: boolean } = {}) {
  const profileIccid = options.iccid === undefined ? iccid : options.iccid;
  return contextConstructed(47, [
    contextPrimitive(0, integerContent(seqNumber)),
    contextPrimitive(1, notificationEvent(...(options.bits ?? [operationBits[operation]]))),
    new asn1js.Utf8String({ value: "eim.example.com" }),
    ...(profileIccid === null ? [] : [applicationPrimitive(26, bcdIccid(profileIccid))]),
    ...(options.extension ? [contextPrimitive(9, new Uint8Array([1]))] : []),
  ]);
}

type FinalResultSpec = { success: true } | { success: false; bppCommandId: number; errorReason: number };

function profileInstallationResult(seqNumber: number, result: FinalResultSpec, options: { smdpOid?: boolean } = {}) {
  const finalResult = result.success
    ? contextConstructed(0, [applicationPrimitive(15, octets(16, 0xa0)), new asn1js.OctetString({ valueHex: new Uint8Array([0x30, 0x03, 0x80, 0x01, 0x00]) })])
    : contextConstructed(1, [contextPrimitive(0, integerContent(result.bppCommandId)), contextPrimitive(1, integerContent(result.errorReason))]);
  return contextConstructed(55, [
    contextConstructed(39, [
      contextPrimitive(0, octets(16, 0x11)),
      notificationMetadata(seqNumber, "install"),
      ...(options.smdpOid === false ? [] : [new asn1js.ObjectIdentifier({ value: "2.999.10" })]),
      contextConstructed(2, [finalResult]),
    ]),
    applicationPrimitive(55, octets(64, 0x5f)),
  ]);
}

function otherSignedNotification(seqNumber: number, operation: Operation, certificateEid: string | null = eid) {
  const euiccSubject: [string, string][] = [["2.5.4.10", "Example EUM"], ...(certificateEid === null ? [] : [["2.5.4.5", certificateEid] as [string, string]])];
  return new asn1js.Sequence({
    value: [
      notificationMetadata(seqNumber, operation),
      applicationPrimitive(55, octets(64, 0x37)),
      certificate(euiccSubject, "Example EUM"),
      certificate([["2.5.4.10", "Example EUM"]], "Example CI"),
    ],
  });
}

/** A real X.509 v3 certificate (ecdsa-with-SHA256 over P-256). */
function certificate(subject: [string, string][], issuer: string) {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const algorithm = () => new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: "1.2.840.10045.4.3.2" })] });
  const name = (attributes: [string, string][]) =>
    new asn1js.Sequence({
      value: attributes.map(([type, value]) => new asn1js.Set({ value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: type }), new asn1js.PrintableString({ value })] })] })),
    });
  const tbs = new asn1js.Sequence({
    value: [
      contextConstructed(0, [new asn1js.Integer({ value: 2 })]),
      new asn1js.Integer({ value: 4660 }),
      algorithm(),
      name([["2.5.4.3", issuer]]),
      new asn1js.Sequence({ value: [new asn1js.UTCTime({ valueDate: new Date("2025-01-01T00:00:00Z") }), new asn1js.UTCTime({ valueDate: new Date("2049-12-31T00:00:00Z") })] }),
      name(subject),
      asn1js.fromBER(publicKey.export({ type: "spki", format: "der" })).result,
    ],
  });
  const signature = sign("sha256", Buffer.from(tbs.toBER()), privateKey);
  return new asn1js.Sequence({ value: [tbs, algorithm(), new asn1js.BitString({ valueHex: signature })] });
}

/** ISO 7064 MOD 97-10 check digits, as SGP.29 specifies for the EID. */
function withEidCheckDigits(first30: string): string {
  const remainder = Number(BigInt(`${first30}00`) % 97n);
  return `${first30}${String(98 - remainder).padStart(2, "0")}`;
}

// --- requests and results ------------------------------------------------------------------

function request(body: unknown, options: { headers?: Record<string, string>; url?: string } = {}): IngestRequest {
  return ingestRequest(
    body,
    { "content-type": "application/json", authorization: `Bearer ${token}`, ...options.headers },
    options.url ?? "https://ingest.simroot.example/v1/sources/src_eim/events",
  );
}

const handleNotification = (notification: asn1js.BaseBlock | Uint8Array, options?: { headers?: Record<string, string>; url?: string }) =>
  request({ pendingNotification: base64(notification instanceof Uint8Array ? notification : der(notification)) }, options);

/** The events of the accepted items, each checked against the catalogue schema. */
function acceptedEvents(items: readonly AdapterItem[]): NormalizedEvent[] {
  return items.flatMap((item) =>
    item.ok
      ? item.events.map((event) => {
          normalizedEventSchema.parse(event);
          return event;
        })
      : [],
  );
}

function onlyEvent(items: readonly AdapterItem[]): NormalizedEvent {
  const refused = items.filter((item) => !item.ok);
  expect(refused).toEqual([]);
  const events = acceptedEvents(items);
  expect(events).toHaveLength(1);
  return events[0]!;
}

function refusal(items: readonly AdapterItem[]) {
  expect(items).toHaveLength(1);
  const [item] = items;
  if (item === undefined || item.ok) throw new Error("expected a refused item");
  return item.issues;
}

// --- tests ------------------------------------------------------------------------------------

describe("eim authentication (Authorization: Bearer)", () => {
  it("accepts the source's token", () => {
    expect(() => eimAdapter.authenticate(request({}), { bearerToken: token })).not.toThrow();
  });

  it.each([
    ["a forged token", { authorization: "Bearer not-the-token" }],
    ["a missing Authorization header", { authorization: "" }],
    ["another scheme", { authorization: `Basic ${Buffer.from(`x:${token}`).toString("base64")}` }],
  ])("refuses %s", (_, headers) => {
    authFailure(() => eimAdapter.authenticate(request({}, { headers }), { bearerToken: token }));
  });

  it("fails closed when the source has no token configured", () => {
    expect(thrown(() => eimAdapter.authenticate(request({}), {})).code).toBe("ingest.unauthenticated");
  });
});

describe("ES9+ handleNotification with a DER PendingNotification", () => {
  it("maps a successful ProfileInstallationResult to profile.installed, keyed and ordered by seqNumber", () => {
    const event = onlyEvent(eimAdapter.parse(handleNotification(profileInstallationResult(42, { success: true }), { headers: { "x-eid": eid } })));
    expect(event).toEqual({
      type: "profile.installed",
      dedupeKey: `${eid}|42`,
      occurredAt: now.toISOString(),
      device: { eid, iccid },
      sequence: 42,
      sourceType: "ProfileInstallationResult",
      data: { eid, iccid, result: "success", seqNumber: 42 },
    });
  });

  it("maps an errorResult to a failed installation with the SGP.22 error reason", () => {
    const failed = profileInstallationResult(43, { success: false, bppCommandId: 5, errorReason: 10 });
    const event = onlyEvent(eimAdapter.parse(handleNotification(failed, { headers: { "x-eid": eid } })));
    expect(event.type).toBe("profile.installed");
    expect(event.data).toEqual({
      eid,
      iccid,
      result: "failure",
      reason: "installFailedDueToInsufficientMemoryForProfile (10) at loadProfileElements (5)",
      seqNumber: 43,
    });
  });

  it("decodes a ProfileInstallationResult without the optional smdpOid", () => {
    const event = onlyEvent(eimAdapter.parse(handleNotification(profileInstallationResult(7, { success: true }, { smdpOid: false }), { headers: { "x-eid": eid } })));
    expect(event.data).toMatchObject({ result: "success", seqNumber: 7 });
  });

  it.each([
    ["enable", "profile.enabled"],
    ["disable", "profile.disabled"],
    ["delete", "profile.deleted"],
  ] as const)("maps a signed %s notification to %s, the EID taken from the eUICC certificate", (operation, type) => {
    const event = onlyEvent(eimAdapter.parse(handleNotification(otherSignedNotification(50, operation))));
    expect(event).toEqual({
      type,
      dedupeKey: `${eid}|50`,
      occurredAt: now.toISOString(),
      device: { eid, iccid },
      sequence: 50,
      sourceType: `OtherSignedNotification:${operation}`,
      data: { eid, iccid, seqNumber: 50 },
    });
  });

  it("builds certificates Node's X.509 parser reads, with the EID as subject serialNumber", () => {
    const parsed = new X509Certificate(Buffer.from(der(certificate([["2.5.4.5", eid]], "Example EUM"))));
    expect(parsed.subject).toContain(`serialNumber=${eid}`);
    const decoded = decodePendingNotification(der(otherSignedNotification(1, "enable")));
    expect(decoded).toMatchObject({ kind: "otherSignedNotification", euiccCertificateSerialNumber: eid });
  });

  it("takes the EID from the eid query parameter when there is no certificate EID or header", () => {
    const url = `https://ingest.simroot.example/v1/sources/src_eim/events?eid=${eid}`;
    const event = onlyEvent(eimAdapter.parse(handleNotification(otherSignedNotification(9, "disable", null), { url })));
    expect(event.device).toEqual({ eid, iccid });
  });

  it("refuses a notification whose EID cannot be known, naming eid", () => {
    const issues = refusal(eimAdapter.parse(handleNotification(profileInstallationResult(3, { success: true }))));
    expect(issues).toEqual([{ path: "eid", message: expect.stringContaining("no EID") }]);
  });

  it("refuses an x-eid header that contradicts the eUICC certificate", () => {
    const issues = refusal(eimAdapter.parse(handleNotification(otherSignedNotification(4, "enable"), { headers: { "x-eid": otherEid } })));
    expect(issues[0]).toMatchObject({ path: "eid", message: expect.stringContaining("contradicts") });
  });

  it("refuses an EID whose check digits are wrong", () => {
    const issues = refusal(eimAdapter.parse(handleNotification(profileInstallationResult(3, { success: true }), { headers: { "x-eid": "89049032123451234512345678901234" } })));
    expect(issues[0]?.path).toBe("eid");
  });

  it("refuses a notification without ICCID", () => {
    const notification = new asn1js.Sequence({
      value: [notificationMetadata(5, "delete", { iccid: null }), applicationPrimitive(55, octets(64, 1)), certificate([["2.5.4.5", eid]], "EUM"), certificate([], "CI")],
    });
    const issues = refusal(eimAdapter.parse(handleNotification(notification)));
    expect(issues).toEqual([{ path: "pendingNotification.tbsOtherNotification.iccid", message: "the notification names no ICCID" }]);
  });

  it("ignores components a later SGP version appends (EXTENSIBILITY IMPLIED)", () => {
    const notification = new asn1js.Sequence({
      value: [notificationMetadata(6, "enable", { extension: true }), applicationPrimitive(55, octets(64, 1)), certificate([["2.5.4.5", eid]], "EUM"), certificate([], "CI")],
    });
    expect(onlyEvent(eimAdapter.parse(handleNotification(notification))).type).toBe("profile.enabled");
  });

  it("maps an SGP.32 compactOtherSignedNotification ('A1', no certificates), the EID from x-eid", () => {
    const compact = contextConstructed(1, [notificationMetadata(61, "disable"), applicationPrimitive(55, octets(64, 0x37))]);
    const event = onlyEvent(eimAdapter.parse(handleNotification(compact, { headers: { "x-eid": eid } })));
    expect(event).toMatchObject({ type: "profile.disabled", dedupeKey: `${eid}|61`, sequence: 61, sourceType: "CompactOtherSignedNotification:disable" });
  });

  it("refuses an SGP.32 compactProfileInstallationResult ('A0'), which names no ICCID", () => {
    const compact = contextConstructed(0, [contextConstructed(0, [contextPrimitive(0, octets(16, 0x11)), new asn1js.Integer({ value: 62 })]), applicationPrimitive(55, octets(64, 1))]);
    const issues = refusal(eimAdapter.parse(handleNotification(compact, { headers: { "x-eid": eid } })));
    expect(issues).toEqual([{ path: "pendingNotification.compactProfileInstallationResult", message: expect.stringContaining("names no ICCID") }]);
  });

  describe("strict decoding refuses", () => {
    const valid = der(profileInstallationResult(8, { success: true }));
    const cases: [string, Uint8Array, RegExp][] = [
      ["a truncated notification", valid.slice(0, valid.length - 10), /malformed DER/],
      ["garbage bytes", new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]), /malformed DER|not a PendingNotification/],
      ["trailing bytes", new Uint8Array([...valid, 0x00, 0x00]), /after the end of the DER value/],
      ["an indefinite length", new Uint8Array([0xbf, 0x37, 0x80, 0x00, 0x00]), /indefinite length/],
      ["a non-minimal length", new Uint8Array([0x30, 0x81, 0x03, 0x02, 0x01, 0x01]), /not minimally encoded/],
      ["another type", der(new asn1js.OctetString({ valueHex: octets(4, 1) })), /not a PendingNotification/],
      ["two operations at once", der(otherSignedNotificationWithBits([1, 2])), /exactly one of/],
      ["a metadata tag in the wrong place", der(new asn1js.Sequence({ value: [new asn1js.Integer({ value: 1 })] })), /expected at least 4 component/],
    ];

    it.each(cases)("%s, with a clear message", (_, bytes, message) => {
      const issues = refusal(eimAdapter.parse(handleNotification(bytes, { headers: { "x-eid": eid } })));
      expect(issues).toHaveLength(1);
      expect(issues[0]!.path).toMatch(/^pendingNotification/);
      expect(issues[0]!.message).toMatch(message);
    });

    it("a pendingNotification that is not base64", () => {
      const issues = refusal(eimAdapter.parse(request({ pendingNotification: "not base64!" })));
      expect(issues).toEqual([{ path: "pendingNotification", message: "must be the base64 of a DER PendingNotification" }]);
    });
  });
});

function otherSignedNotificationWithBits(bits: number[]) {
  return new asn1js.Sequence({
    value: [notificationMetadata(9, "enable", { bits }), applicationPrimitive(55, octets(64, 1)), certificate([["2.5.4.5", eid]], "EUM"), certificate([], "CI")],
  });
}

describe("eIM vendor JSON notifications", () => {
  const body = {
    eid,
    notifications: [
      { seqNumber: 10, operation: "install", iccid: `${iccid}F`, result: "success", timestamp: "2026-02-28T08:00:00Z" },
      { seqNumber: 11, operation: "enable", iccid },
      { seqNumber: 12, operation: "reboot", iccid },
      { seqNumber: 13, operation: "install", iccid, result: "failure", reason: "insufficient memory" },
    ],
  };

  it("makes one item per notification and refuses only the bad one", () => {
    const items = eimAdapter.parse(request(body));
    expect(items.map((item) => item.ok)).toEqual([true, true, false, true]);
    const bad = items[2]!;
    expect(bad).toEqual({ index: 2, ok: false, issues: [expect.objectContaining({ path: "operation" })] });
    const events = acceptedEvents(items);
    expect(events.map((event) => [event.type, event.dedupeKey, event.sequence])).toEqual([
      ["profile.installed", `${eid}|10`, 10],
      ["profile.enabled", `${eid}|11`, 11],
      ["profile.installed", `${eid}|13`, 13],
    ]);
    expect(events[0]).toMatchObject({ occurredAt: "2026-02-28T08:00:00Z", device: { eid, iccid }, data: { result: "success", iccid } });
    expect(events[1]!.occurredAt).toBe(now.toISOString());
    expect(events[2]!.data).toEqual({ eid, iccid, result: "failure", reason: "insufficient memory", seqNumber: 13 });
  });

  it("refuses an install notification without its result", () => {
    const issues = refusal(eimAdapter.parse(request({ eid, notifications: [{ seqNumber: 1, operation: "install", iccid }] })));
    expect(issues).toEqual([{ path: "result", message: "an install notification needs its result" }]);
  });

  it("throws ingest.invalid_body when the envelope's EID is invalid", () => {
    const error = thrown(() => eimAdapter.parse(request({ eid: "1234", notifications: [] })));
    expect(error.code).toBe("ingest.invalid_body");
    expect(error.issues[0]?.path).toBe("eid");
  });
});

describe("ES2+ handleDownloadProgressInfo", () => {
  const progress = (notificationPointId: number, status: string, extra: Record<string, unknown> = {}) => ({
    header: { functionRequesterIdentifier: "smdp.example.com", functionCallIdentifier: "TX-0001" },
    eid,
    iccid,
    profileType: "IoT Default",
    timestamp: "2026-02-27T10:15:00Z",
    notificationPointId,
    notificationPointStatus: { status },
    ...extra,
  });

  it("maps an executed BPP installation (point 4) to a successful profile.installed", () => {
    const event = onlyEvent(eimAdapter.parse(request(progress(4, "Executed-Success"))));
    expect(event).toEqual({
      type: "profile.installed",
      dedupeKey: `${eid}|${iccid}|4|2026-02-27T10:15:00Z`,
      occurredAt: "2026-02-27T10:15:00Z",
      device: { eid, iccid },
      sourceType: "handleDownloadProgressInfo:4:Executed-Success",
      data: { eid, iccid, result: "success" },
    });
  });

  it("maps a failed installation to result failure with the status code data", () => {
    const failed = progress(4, "Failed");
    failed.notificationPointStatus = { status: "Failed", statusCodeData: { subjectCode: "8.2.1", reasonCode: "3.8", message: "Refused" } } as never;
    const event = onlyEvent(eimAdapter.parse(request(failed)));
    expect(event.data).toEqual({ eid, iccid, result: "failure", reason: "Failed at BPP installation subjectCode 8.2.1 reasonCode 3.8: Refused" });
  });

  it("treats an expired download at an earlier point as a failed installation", () => {
    const event = onlyEvent(eimAdapter.parse(request(progress(1, "Expired"))));
    expect(event).toMatchObject({ type: "profile.installed", data: { result: "failure", reason: "Expired at eligibility and retry limit check" } });
  });

  it("records intermediate progress (point 3, BPP download) as source.unhandled", () => {
    const event = onlyEvent(eimAdapter.parse(request(progress(3, "Executed-Success"))));
    expect(event).toMatchObject({
      type: "source.unhandled",
      data: { sourceType: "handleDownloadProgressInfo:3:Executed-Success", summary: { notificationPointId: 3, notificationPoint: "BPP download", status: "Executed-Success", profileType: "IoT Default" } },
    });
  });

  it("refuses an installation outcome without EID", () => {
    const { eid: _omitted, ...withoutEid } = progress(4, "Executed-Success");
    expect(refusal(eimAdapter.parse(request(withoutEid)))).toEqual([{ path: "eid", message: "a download outcome needs the EID of the eUICC" }]);
  });

  it("refuses a body without notificationPointStatus, naming it", () => {
    const { notificationPointStatus: _omitted, ...incomplete } = progress(4, "Executed-Success");
    expect(refusal(eimAdapter.parse(request(incomplete)))[0]?.path).toBe("notificationPointStatus");
  });
});

describe("eim garbage bodies", () => {
  it.each([
    ["text", "this is not json"],
    ["a JSON array", "[]"],
    ["an object of no known form", JSON.stringify({ hello: "world" })],
    ["notifications that are not a list", JSON.stringify({ eid, notifications: "all of them" })],
  ])("throw ingest.invalid_body for %s", (_, body) => {
    invalidBodyFailure(() => eimAdapter.parse(request(body)));
  });
});
