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
import { X509Certificate, type KeyObject } from "node:crypto";
import * as asn1js from "asn1js";
import { describe, expect, it } from "vitest";
import { normalizedEventSchema, type NormalizedEvent } from "../../catalogue/catalogue.ts";
import type { AdapterItem, IngestRequest, SourceCredentials } from "../adapter.ts";
import { eimAdapter } from "./eim.ts";
import { decodePendingNotification } from "./eim-asn1.ts";
import {
  applicationPrimitive,
  base64,
  contextConstructed,
  contextPrimitive,
  createTestPki,
  der,
  euiccSign,
  integerContent,
  issueCertificate,
  notificationMetadata as sgpNotificationMetadata,
  octets,
  type MetadataOptions,
  type Operation,
  type TestCertificate,
  withEidCheckDigits,
} from "./eim-pki.test-support.ts";
import { authFailure, ingestRequest, invalidBodyFailure, now, thrown } from "./test-support.ts";
const token = "eim-source-token-7f3a";
const eid = "89049032123451234512345678901235";
const otherEid = withEidCheckDigits("890490321234512345123456789099");
const iccid = "8944500102198304826";

const notificationMetadata = (seqNumber: number, operation: Operation, options: MetadataOptions = {}) =>
  sgpNotificationMetadata(seqNumber, operation, { iccid, ...options });

type FinalResultSpec = { success: true } | { success: false; bppCommandId: number; errorReason: number };

const pki = createTestPki();
const genuine = pki.euicc(eid);
/** The source's credentials: its token and the GSMA CI root it trusts. */
const credentials = { bearerToken: token, trustAnchors: [pki.ci.pem] };
const parse = (request: IngestRequest, given: SourceCredentials = credentials) => eimAdapter.parse(request, given);

/** `[APPLICATION 55]` EuiccSign over the DER of `signed`, by the eUICC's key (or fixed bytes when `signature` is given). */
const euiccSignature = (signed: asn1js.BaseBlock, key: KeyObject = genuine.privateKey, signature?: Uint8Array) =>
  applicationPrimitive(55, signature ?? euiccSign(der(signed), key));

function profileInstallationResult(seqNumber: number, result: FinalResultSpec, options: { smdpOid?: boolean } = {}) {
  const finalResult = result.success
    ? contextConstructed(0, [
        applicationPrimitive(15, octets(16, 0xa0)),
        new asn1js.OctetString({ valueHex: new Uint8Array([0x30, 0x03, 0x80, 0x01, 0x00]) }),
      ])
    : contextConstructed(1, [
        contextPrimitive(0, integerContent(result.bppCommandId)),
        contextPrimitive(1, integerContent(result.errorReason)),
      ]);
  const data = contextConstructed(39, [
    contextPrimitive(0, octets(16, 0x11)),
    notificationMetadata(seqNumber, "install"),
    ...(options.smdpOid === false ? [] : [new asn1js.ObjectIdentifier({ value: "2.999.10" })]),
    contextConstructed(2, [finalResult]),
  ]);
  return contextConstructed(55, [data, euiccSignature(data)]);
}

/** OtherSignedNotification { tbsOtherNotification, euiccNotificationSignature, euiccCertificate, eumCertificate }. */
function signedOther(metadata: asn1js.BaseBlock, options: { euicc?: TestCertificate; eum?: TestCertificate; signature?: Uint8Array } = {}) {
  const euicc = options.euicc ?? genuine;
  return new asn1js.Sequence({
    value: [
      metadata,
      euiccSignature(metadata, euicc.privateKey, options.signature),
      asn1js.fromBER(euicc.der).result,
      asn1js.fromBER((options.eum ?? pki.eum).der).result,
    ],
  });
}

const otherSignedNotification = (seqNumber: number, operation: Operation) => signedOther(notificationMetadata(seqNumber, operation));

// --- requests and results ------------------------------------------------------------------

function request(body: unknown, options: { headers?: Record<string, string>; url?: string } = {}): IngestRequest {
  return ingestRequest(
    body,
    { "content-type": "application/json", authorization: `Bearer ${token}`, ...options.headers },
    options.url ?? "https://ingest.simroot.example/v1/sources/src_eim/events",
  );
}

/** ES9+ handleNotification; the eIM forwards the eUICC and EUM certificates beside it (unless `certificates` is null). */
const handleNotification = (
  notification: asn1js.BaseBlock | Uint8Array,
  options: { headers?: Record<string, string>; url?: string; certificates?: { euicc: TestCertificate; eum: TestCertificate } | null } = {},
) => {
  const certificates = options.certificates === undefined ? { euicc: genuine, eum: pki.eum } : options.certificates;
  return request(
    {
      pendingNotification: base64(notification instanceof Uint8Array ? notification : der(notification)),
      ...(certificates === null ? {} : { euiccCertificate: base64(certificates.euicc.der), eumCertificate: base64(certificates.eum.der) }),
    },
    options,
  );
};

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
    const event = onlyEvent(parse(handleNotification(profileInstallationResult(42, { success: true }), { headers: { "x-eid": eid } })));
    expect(event).toEqual({
      type: "profile.installed",
      dedupeKey: `${eid}|42`,
      occurredAt: now.toISOString(),
      // An ES9+ notification states no time: it is the receipt's, which a redelivery does not share (review 129).
      timeChosen: true,
      device: { eid, iccid },
      sequence: 42,
      sourceType: "ProfileInstallationResult",
      data: { eid, iccid, result: "success", seqNumber: 42 },
    });
  });

  it("maps an errorResult to a failed installation with the SGP.22 error reason", () => {
    const failed = profileInstallationResult(43, { success: false, bppCommandId: 5, errorReason: 10 });
    const event = onlyEvent(parse(handleNotification(failed, { headers: { "x-eid": eid } })));
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
    const event = onlyEvent(
      parse(handleNotification(profileInstallationResult(7, { success: true }, { smdpOid: false }), { headers: { "x-eid": eid } })),
    );
    expect(event.data).toMatchObject({ result: "success", seqNumber: 7 });
  });

  it.each([
    ["enable", "profile.enabled"],
    ["disable", "profile.disabled"],
    ["delete", "profile.deleted"],
  ] as const)("maps a signed %s notification to %s, the EID taken from the eUICC certificate", (operation, type) => {
    const event = onlyEvent(parse(handleNotification(otherSignedNotification(50, operation))));
    expect(event).toEqual({
      type,
      dedupeKey: `${eid}|50`,
      occurredAt: now.toISOString(),
      timeChosen: true,
      device: { eid, iccid },
      sequence: 50,
      sourceType: `OtherSignedNotification:${operation}`,
      data: { eid, iccid, seqNumber: 50 },
    });
  });

  it("builds certificates Node's X.509 parser reads, with the EID as subject serialNumber", () => {
    const parsed = new X509Certificate(Buffer.from(genuine.der));
    expect(parsed.subject).toContain(`serialNumber=${eid}`);
    expect(parsed.verify(new X509Certificate(pki.eum.pem).publicKey)).toBe(true);
    const decoded = decodePendingNotification(der(otherSignedNotification(1, "enable")));
    expect(decoded).toMatchObject({ kind: "otherSignedNotification", euiccCertificateSerialNumber: eid });
  });

  it("takes the EID of a ProfileInstallationResult from the eUICC certificate the eIM forwards", () => {
    const event = onlyEvent(parse(handleNotification(profileInstallationResult(3, { success: true }))));
    expect(event.device).toEqual({ eid, iccid });
  });

  it("refuses an x-eid header that contradicts the eUICC certificate", () => {
    const issues = refusal(parse(handleNotification(otherSignedNotification(4, "enable"), { headers: { "x-eid": otherEid } })));
    expect(issues[0]).toMatchObject({ path: "eid", message: expect.stringContaining("contradicts") });
  });

  it("refuses a certified EID whose check digits are wrong", () => {
    const badEid = pki.euicc("89049032123451234512345678901234");
    const issues = refusal(parse(handleNotification(signedOther(notificationMetadata(3, "enable"), { euicc: badEid }))));
    expect(issues[0]?.path).toBe("eid");
  });

  it("refuses a notification without ICCID", () => {
    const notification = new asn1js.Sequence({
      value: signedOther(notificationMetadata(5, "delete", { iccid: null })).valueBlock.value,
    });
    const issues = refusal(parse(handleNotification(notification)));
    expect(issues).toEqual([{ path: "pendingNotification.tbsOtherNotification.iccid", message: "the notification names no ICCID" }]);
  });

  it("ignores components a later SGP version appends (EXTENSIBILITY IMPLIED)", () => {
    const notification = new asn1js.Sequence({
      value: signedOther(notificationMetadata(6, "enable", { extension: true })).valueBlock.value,
    });
    expect(onlyEvent(parse(handleNotification(notification))).type).toBe("profile.enabled");
  });

  it("maps an SGP.32 compactOtherSignedNotification ('A1', no certificates inside), verified with the forwarded certificate", () => {
    const metadata = notificationMetadata(61, "disable");
    const compact = contextConstructed(1, [metadata, euiccSignature(metadata)]);
    const event = onlyEvent(parse(handleNotification(compact, { headers: { "x-eid": eid } })));
    expect(event).toMatchObject({
      type: "profile.disabled",
      dedupeKey: `${eid}|61`,
      sequence: 61,
      sourceType: "CompactOtherSignedNotification:disable",
    });
  });

  it("refuses an SGP.32 compactProfileInstallationResult ('A0'), which names no ICCID", () => {
    const compact = contextConstructed(0, [
      contextConstructed(0, [contextPrimitive(0, octets(16, 0x11)), new asn1js.Integer({ value: 62 })]),
      applicationPrimitive(55, octets(64, 1)),
    ]);
    const issues = refusal(parse(handleNotification(compact, { headers: { "x-eid": eid } })));
    expect(issues).toEqual([
      { path: "pendingNotification.compactProfileInstallationResult", message: expect.stringContaining("names no ICCID") },
    ]);
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
      [
        "a malformed OBJECT IDENTIFIER in the eUICC certificate's subject",
        der(
          new asn1js.Sequence({
            value: [
              notificationMetadata(9, "enable"),
              applicationPrimitive(55, octets(64, 1)),
              certificateWithSubjectAttribute(new Uint8Array([0x80])),
              asn1js.fromBER(pki.eum.der).result,
            ],
          }),
        ),
        /OBJECT IDENTIFIER/,
      ],
      [
        // 300,000 NULLs in one SEQUENCE (600 KB, 800 KB of base64): 2 s and 100 MB to read before (review 78).
        "a notification holding more values than any notification with its certificates",
        new Uint8Array([0x30, 0x83, 0x09, 0x27, 0xc0, ...new Array(600_000).fill(0).map((_, index) => (index % 2 === 0 ? 0x05 : 0x00))]),
        /more than 2048 values/,
      ],
      [
        "a metadata tag in the wrong place",
        der(new asn1js.Sequence({ value: [new asn1js.Integer({ value: 1 })] })),
        /expected at least 4 component/,
      ],
    ];

    it.each(cases)("%s, with a clear message", (_, bytes, message) => {
      const issues = refusal(parse(handleNotification(bytes, { headers: { "x-eid": eid } })));
      expect(issues).toHaveLength(1);
      expect(issues[0]!.path).toMatch(/^pendingNotification/);
      expect(issues[0]!.message).toMatch(message);
    });

    it("a pendingNotification that is not base64", () => {
      const issues = refusal(parse(request({ pendingNotification: "not base64!" })));
      expect(issues).toEqual([{ path: "pendingNotification", message: "must be the base64 of a DER PendingNotification" }]);
    });
  });
});

/** A certificate (RFC 5280 shape, unsigned) whose subject holds one attribute with the given OID content octets. */
function certificateWithSubjectAttribute(oidContent: Uint8Array) {
  const name = (oid: asn1js.BaseBlock) =>
    new asn1js.Sequence({
      value: [new asn1js.Set({ value: [new asn1js.Sequence({ value: [oid, new asn1js.PrintableString({ value: "89049032" })] })] })],
    });
  const algorithm = new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: "1.2.840.10045.4.3.2" })] });
  const tbs = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 1 }),
      algorithm,
      name(new asn1js.ObjectIdentifier({ value: "2.5.4.3" })),
      new asn1js.Sequence({ value: [new asn1js.UTCTime({ valueDate: new Date("2025-01-01T00:00:00Z") })] }),
      name(new asn1js.Primitive({ idBlock: { tagClass: 1, tagNumber: 6 }, valueHex: oidContent })),
      new asn1js.Sequence({ value: [] }),
    ],
  });
  return new asn1js.Sequence({ value: [tbs, algorithm, new asn1js.BitString({ valueHex: octets(8, 1) })] });
}

function otherSignedNotificationWithBits(bits: number[]) {
  return new asn1js.Sequence({
    value: [
      notificationMetadata(9, "enable", { bits }),
      applicationPrimitive(55, octets(64, 1)),
      asn1js.fromBER(genuine.der).result,
      asn1js.fromBER(pki.eum.der).result,
    ],
  });
}

describe("eIM vendor JSON notifications (a source that trusts its eIM: no trust anchors)", () => {
  const vendorRequest = (body: unknown) => request(body);
  const parse = (request: IngestRequest) => eimAdapter.parse(request, { bearerToken: token });

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
    const items = parse(vendorRequest(body));
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
    expect(events[0]!.timeChosen).toBeUndefined();
    expect(events[1]!.occurredAt).toBe(now.toISOString());
    expect(events[1]!.timeChosen).toBe(true);
    expect(events[2]!.data).toEqual({ eid, iccid, result: "failure", reason: "insufficient memory", seqNumber: 13 });
  });

  it("refuses an install notification without its result", () => {
    const issues = refusal(parse(vendorRequest({ eid, notifications: [{ seqNumber: 1, operation: "install", iccid }] })));
    expect(issues).toEqual([{ path: "result", message: "an install notification needs its result" }]);
  });

  it("is refused, as unverified, by a source that verifies eUICC signatures", () => {
    const items = eimAdapter.parse(request(body), credentials);
    expect(items).toEqual([{ index: 0, ok: false, unverified: true, issues: [expect.objectContaining({ path: "notifications" })] }]);
  });

  it("throws ingest.invalid_body when the envelope's EID is invalid", () => {
    const error = thrown(() => parse(vendorRequest({ eid: "1234", notifications: [] })));
    expect(error.code).toBe("ingest.invalid_body");
    expect(error.issues[0]?.path).toBe("eid");
  });
});

describe("ES2+ handleDownloadProgressInfo (a source that trusts its SM-DP+: no trust anchors)", () => {
  const parse = (request: IngestRequest) => eimAdapter.parse(request, { bearerToken: token });
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
    const event = onlyEvent(parse(request(progress(4, "Executed-Success"))));
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
    failed.notificationPointStatus = {
      status: "Failed",
      statusCodeData: { subjectCode: "8.2.1", reasonCode: "3.8", message: "Refused" },
    } as never;
    const event = onlyEvent(parse(request(failed)));
    expect(event.data).toEqual({
      eid,
      iccid,
      result: "failure",
      reason: "Failed at BPP installation subjectCode 8.2.1 reasonCode 3.8: Refused",
    });
  });

  it("treats an expired download at an earlier point as a failed installation", () => {
    const event = onlyEvent(parse(request(progress(1, "Expired"))));
    expect(event).toMatchObject({
      type: "profile.installed",
      data: { result: "failure", reason: "Expired at eligibility and retry limit check" },
    });
  });

  it("records intermediate progress (point 3, BPP download) as source.unhandled", () => {
    const event = onlyEvent(parse(request(progress(3, "Executed-Success"))));
    expect(event).toMatchObject({
      type: "source.unhandled",
      data: {
        sourceType: "handleDownloadProgressInfo:3:Executed-Success",
        summary: { notificationPointId: 3, notificationPoint: "BPP download", status: "Executed-Success", profileType: "IoT Default" },
      },
    });
  });

  it("refuses an installation outcome without EID", () => {
    const { eid: _omitted, ...withoutEid } = progress(4, "Executed-Success");
    expect(refusal(parse(request(withoutEid)))).toEqual([{ path: "eid", message: "a download outcome needs the EID of the eUICC" }]);
  });

  it("refuses a body without notificationPointStatus, naming it", () => {
    const { notificationPointStatus: _omitted, ...incomplete } = progress(4, "Executed-Success");
    expect(refusal(parse(request(incomplete)))[0]?.path).toBe("notificationPointStatus");
  });

  it.each([
    [4, "Executed-Success"],
    [1, "Failed"],
    [3, "Executed-Success"],
  ])(
    "is refused, as unverified, by a source that verifies eUICC signatures (point %i %s: signed by no eUICC, review 78)",
    (point, status) => {
      const items = eimAdapter.parse(request(progress(point, status)), credentials);
      expect(items).toEqual([
        { index: 0, ok: false, unverified: true, issues: [expect.objectContaining({ path: "notificationPointId" })] },
      ]);
    },
  );
});

describe("eim garbage bodies", () => {
  it.each([
    ["text", "this is not json"],
    ["a JSON array", "[]"],
    ["an object of no known form", JSON.stringify({ hello: "world" })],
    ["notifications that are not a list", JSON.stringify({ eid, notifications: "all of them" })],
  ])("throw ingest.invalid_body for %s", (_, body) => {
    invalidBodyFailure(() => parse(request(body), { bearerToken: token }));
  });
});

describe("eUICC notification verification (generated GSMA CI -> EUM -> eUICC test PKI)", () => {
  const unverified = (items: readonly AdapterItem[]) => {
    expect(items).toHaveLength(1);
    const [item] = items;
    if (item === undefined || item.ok) throw new Error("expected a refused item");
    expect(item.unverified).toBe(true);
    return item.issues[0]!;
  };

  it("refuses a notification whose signed seqNumber was changed from 2 to 9 after signing", () => {
    const signed = notificationMetadata(2, "enable");
    const tampered = new asn1js.Sequence({
      value: [
        notificationMetadata(9, "enable"),
        euiccSignature(signed),
        asn1js.fromBER(genuine.der).result,
        asn1js.fromBER(pki.eum.der).result,
      ],
    });
    expect(unverified(parse(handleNotification(tampered)))).toEqual({
      path: "pendingNotification",
      message: expect.stringContaining("signature does not verify"),
    });
  });

  it("refuses a corrupted signature", () => {
    const metadata = notificationMetadata(3, "delete");
    const signature = euiccSign(der(metadata), genuine.privateKey);
    signature[10] = signature[10]! ^ 0xff;
    expect(unverified(parse(handleNotification(signedOther(metadata, { signature })))).message).toContain("signature does not verify");
  });

  it("refuses a tampered ProfileInstallationResult (an error result rewritten to success)", () => {
    const failed = profileInstallationResult(12, { success: false, bppCommandId: 5, errorReason: 10 });
    const bytes = der(failed);
    const success = der(profileInstallationResult(12, { success: true }));
    const [data] = (asn1js.fromBER(success).result as asn1js.Constructed).valueBlock.value;
    const [, signature] = (asn1js.fromBER(bytes).result as asn1js.Constructed).valueBlock.value;
    const forged = contextConstructed(55, [data!, signature!]);
    expect(unverified(parse(handleNotification(forged))).message).toContain("signature does not verify");
  });

  it("refuses a rogue certificate chain (its own CI and EUM) claiming a genuine EID", () => {
    const rogue = createTestPki("Rogue");
    const impostor = rogue.euicc(eid);
    const notification = signedOther(notificationMetadata(4, "enable"), { euicc: impostor, eum: rogue.eum });
    expect(unverified(parse(handleNotification(notification)))).toEqual({
      path: "eumCertificate",
      message: expect.stringContaining("does not chain"),
    });
  });

  it("refuses an eUICC certificate that names the genuine EUM but was not signed by it", () => {
    const forged = issueCertificate({
      subject: [
        ["2.5.4.10", "Test EUM"],
        ["2.5.4.5", eid],
      ],
      issuer: { ...pki.eum, privateKey: createTestPki("Other").eum.privateKey },
      ca: false,
    });
    const notification = signedOther(notificationMetadata(5, "enable"), { euicc: forged });
    expect(unverified(parse(handleNotification(notification)))).toEqual({
      path: "euiccCertificate",
      message: expect.stringContaining("not signed by the EUM"),
    });
  });

  it("refuses a notification signed by one eUICC presented with another eUICC's genuine certificate (wrong EID)", () => {
    const other = pki.euicc(otherEid);
    const metadata = notificationMetadata(6, "enable");
    const notification = new asn1js.Sequence({
      value: [metadata, euiccSignature(metadata, genuine.privateKey), asn1js.fromBER(other.der).result, asn1js.fromBER(pki.eum.der).result],
    });
    expect(unverified(parse(handleNotification(notification))).message).toContain("signature does not verify");
  });

  it("refuses a ProfileInstallationResult forwarded with another eUICC's certificate (wrong EID)", () => {
    const other = pki.euicc(otherEid);
    const items = parse(
      handleNotification(profileInstallationResult(7, { success: true }), { certificates: { euicc: other, eum: pki.eum } }),
    );
    expect(unverified(items).message).toContain("signature does not verify");
  });

  it("refuses a ProfileInstallationResult without the eUICC certificate", () => {
    expect(unverified(parse(handleNotification(profileInstallationResult(8, { success: true }), { certificates: null })))).toEqual({
      path: "euiccCertificate",
      message: expect.stringContaining("missing"),
    });
  });

  it("refuses an expired eUICC certificate", () => {
    const expired = pki.euicc(eid, { notBefore: new Date("2020-01-01T00:00:00Z"), notAfter: new Date("2025-12-31T00:00:00Z") });
    const notification = signedOther(notificationMetadata(9, "enable"), { euicc: expired });
    expect(unverified(parse(handleNotification(notification))).message).toContain("validity period");
  });

  it("refuses every eUICC notification when the source has no trust anchors", () => {
    const issue = unverified(parse(handleNotification(otherSignedNotification(10, "enable")), { bearerToken: token }));
    expect(issue.message).toContain("no trust anchors");
  });

  it("accepts a chain that ends at a trusted EUM certificate", () => {
    const event = onlyEvent(
      parse(handleNotification(otherSignedNotification(11, "enable")), { bearerToken: token, trustAnchors: [pki.eum.pem] }),
    );
    expect(event).toMatchObject({ type: "profile.enabled", device: { eid, iccid }, sequence: 11 });
  });
});

describe("EUM name constraints (SGP.22 §4.5.2.1.0.2: the EIDs an EUM may certify)", () => {
  /** Another manufacturer's EID range (IIN 89086030), which the test EUM (89049032) may not certify. */
  const foreignEid = withEidCheckDigits("890860302022000000240000000001");

  /** An OtherSignedNotification by an eUICC certified by `eum` under the EID `eidOf`. */
  const notificationFor = (seqNumber: number, eidOf: string, issuer: ReturnType<typeof createTestPki> = pki) =>
    signedOther(notificationMetadata(seqNumber, "enable"), { euicc: issuer.euicc(eidOf), eum: issuer.eum });
  const refusedIssue = (items: readonly AdapterItem[]) => {
    const [item] = items;
    if (item === undefined || item.ok) throw new Error(`expected a refused item, got ${JSON.stringify(items)}`);
    expect(item.unverified).toBe(true);
    return item.issues[0]!;
  };

  it("accepts an eUICC certificate whose EID starts with the EUM's permitted prefix", () => {
    expect(onlyEvent(parse(handleNotification(notificationFor(20, eid))))).toMatchObject({ device: { eid } });
  });

  it("refuses an eUICC certificate a genuine EUM signed for another manufacturer's EID", () => {
    expect(refusedIssue(parse(handleNotification(notificationFor(21, foreignEid))))).toEqual({
      path: "euiccCertificate",
      message: `the EID ${foreignEid} is outside the EIDs the EUM certificate may certify (name constraints: 89049032)`,
    });
  });

  it("takes any of several permitted prefixes, and only those", () => {
    const multi = createTestPki("Multi", { eidPrefixes: ["89033023", "8904903212"] });
    const given = { bearerToken: token, trustAnchors: [multi.ci.pem] };
    const inFirst = withEidCheckDigits("890330231234512345123456789012");
    expect(onlyEvent(parse(handleNotification(notificationFor(22, inFirst, multi)), given)).device).toMatchObject({ eid: inFirst });
    expect(onlyEvent(parse(handleNotification(notificationFor(23, eid, multi)), given)).device).toMatchObject({ eid });
    // 89049032 but not 8904903212: the constraint is the whole prefix.
    const besideSecond = withEidCheckDigits("890490329934512345123456789012");
    for (const outside of [besideSecond, foreignEid]) {
      expect(refusedIssue(parse(handleNotification(notificationFor(24, outside, multi)), given)).message).toBe(
        `the EID ${outside} is outside the EIDs the EUM certificate may certify (name constraints: 89033023, 8904903212)`,
      );
    }
  });

  it("refuses an EID in the EUM's excludedSubtrees", () => {
    const excluding = createTestPki("Excluding", { excludedEidPrefixes: ["8904903299"] });
    const given = { bearerToken: token, trustAnchors: [excluding.ci.pem] };
    expect(onlyEvent(parse(handleNotification(notificationFor(25, eid, excluding)), given)).device).toMatchObject({ eid });
    const excluded = withEidCheckDigits("890490329912345123456789012345");
    expect(refusedIssue(parse(handleNotification(notificationFor(26, excluded, excluding)), given)).message).toContain(
      "is outside the EIDs the EUM certificate may certify (excluded: 8904903299)",
    );
  });

  it("refuses, under a GSMA CI, an EUM certificate without name constraints (SGP.22 requires them)", () => {
    const unconstrained = createTestPki("Unconstrained", { eidPrefixes: null });
    const given = { bearerToken: token, trustAnchors: [unconstrained.ci.pem] };
    expect(refusedIssue(parse(handleNotification(notificationFor(27, eid, unconstrained)), given))).toEqual({
      path: "eumCertificate",
      message: expect.stringContaining("the EUM certificate does not constrain the EIDs it may certify"),
    });
  });

  it("holds a directly trusted EUM to its name constraints, and takes one without as the operator's choice", () => {
    expect(
      refusedIssue(parse(handleNotification(notificationFor(28, foreignEid)), { bearerToken: token, trustAnchors: [pki.eum.pem] })),
    ).toMatchObject({ path: "euiccCertificate", message: expect.stringContaining("is outside the EIDs") });
    const unconstrained = createTestPki("Private", { eidPrefixes: null });
    const given = { bearerToken: token, trustAnchors: [unconstrained.eum.pem] };
    expect(onlyEvent(parse(handleNotification(notificationFor(29, foreignEid, unconstrained)), given)).device).toMatchObject({
      eid: foreignEid,
    });
  });

  it.each([
    ["the permitted EID first", [eid, foreignEid]],
    ["the foreign EID first", [foreignEid, eid]],
  ])("refuses an eUICC certificate whose subject names two EIDs (%s)", (_, eids) => {
    const twoEids = issueCertificate({
      subject: [["2.5.4.10", "Test EUM"], ...eids.map((serial): [string, string] => ["2.5.4.5", serial])],
      issuer: pki.eum,
      ca: false,
    });
    expect(refusedIssue(parse(handleNotification(signedOther(notificationMetadata(30, "enable"), { euicc: twoEids }))))).toEqual({
      path: "euiccCertificate",
      message: "the eUICC certificate names 2 EIDs (subject serialNumber): it must name one",
    });
  });
});
