/**
 * Format `eim`: profile lifecycle reported by an eIM (GSMA SGP.32) or an SM-DP+ (SGP.22).
 * Three bodies are accepted:
 *
 * a. ES9+ handleNotification, JSON binding (SGP.22 §6.5.2.4): `{"pendingNotification": "<base64 DER>"}`,
 *    the eUICC-signed PendingNotification (or the SGP.32 compact other notification) decoded
 *    strictly in `eim-asn1.ts` and verified in `eim-verify.ts` against the source's trust
 *    anchors (`credentials.trustAnchors`, PEM: GSMA CI and/or EUM certificates). A
 *    ProfileInstallationResult or compact notification carries no certificate: the eIM adds
 *    `euiccCertificate` and `eumCertificate` (base64 DER) beside it. The EID is the verified
 *    eUICC certificate's subject serialNumber, within the EID prefixes of the EUM certificate's
 *    name constraints (SGP.22 §4.5.2.1.0.2; an EUM without them is refused under a GSMA CI, see
 *    `eim-verify.ts`); an `x-eid` header or `eid` query parameter that
 *    contradicts it is refused. Anything unverifiable is refused (and recorded as refused).
 * b. A JSON form for eIM vendors: `{ eid, notifications: [{ seqNumber, operation, iccid, result?, reason?, timestamp? }] }`.
 *    Nothing in it is signed by the eUICC: a source with trust anchors refuses it.
 * c. ES2+ handleDownloadProgressInfo (SGP.22 §5.3.5), the SM-DP+ telling the operator how a
 *    download went: `{ header, eid, iccid, profileType, timestamp, notificationPointId, notificationPointStatus }`.
 *    Signed by no eUICC either: a source with trust anchors refuses it (an SM-DP+ posts to a source of its own).
 *
 * Authentication: `Authorization: Bearer <token>`. The GSMA interfaces use mutual TLS, which is
 * terminated before this adapter; the token binds the request to the configured source.
 */
import type { X509Certificate } from "node:crypto";
import * as z from "zod";
import { timestampSchema, type NormalizedEvent } from "../../catalogue/catalogue.ts";
import { eidSchema } from "../../device/identifiers.ts";
import { SimrootError, type FieldIssue } from "../../error.ts";
import type { Adapter, AdapterItem, IngestRequest } from "../adapter.ts";
import { authenticateBearerToken } from "./auth.ts";
import { atMostPerRequest, invalidBodyOf, jsonObject } from "./body.ts";
import { checkedItem, refused, zodIssues } from "./items.ts";
import {
  DerDecodeError,
  decodePendingNotification,
  notificationOperations,
  type NotificationOperation,
  type PendingNotification,
} from "./eim-asn1.ts";
import { parseTrustAnchors, verifyEuiccSigned, type PresentedCertificates } from "./eim-verify.ts";

export const eimAdapter: Adapter = {
  format: "eim",
  /** SGP.22's JSON binding of ES9+ and ES2+ (`application/json;charset=UTF-8`); its ASN.1 binding is not read. */
  mediaTypes: ["application/json"],

  authenticate: authenticateBearerToken,

  parse(request, credentials = {}) {
    const body = jsonObject(request.body, invalidBody, "the body must be a JSON object");
    const anchors = trustAnchorsOf(credentials.trustAnchors);
    if ("pendingNotification" in body) return [handleNotificationItem(body, request, anchors)];
    if ("notifications" in body) {
      if (anchors.length > 0) {
        return [
          unverifiedItem({
            path: "notifications",
            message: "this source verifies eUICC signatures: send the signed notifications ({pendingNotification})",
          }),
        ];
      }
      return vendorNotificationItems(body, request.now);
    }
    if ("notificationPointId" in body) {
      // The SM-DP+'s word, signed by no eUICC: an installation it reports would give the device the ICCID it names.
      if (anchors.length > 0) {
        return [
          unverifiedItem({
            path: "notificationPointId",
            message:
              "this source verifies eUICC signatures: an ES2+ handleDownloadProgressInfo is signed by no eUICC; send the eUICC's ProfileInstallationResult ({pendingNotification})",
          }),
        ];
      }
      return [downloadProgressItem(body)];
    }
    throw invalidBody(
      "expected an ES9+ handleNotification {pendingNotification}, an eIM {eid, notifications} or an ES2+ handleDownloadProgressInfo body",
    );
  },
};

/** One eUICC notification, whichever body carried it. */
interface ProfileNotification {
  readonly eid: string;
  readonly iccid: string;
  readonly seqNumber: number;
  readonly operation: NotificationOperation;
  /** Install only. */
  readonly result?: "success" | "failure";
  readonly reason?: string;
  readonly occurredAt: string;
  /** The notification stated no time: `occurredAt` is its receipt (catalogue `NormalizedEvent`). */
  readonly timeChosen?: boolean;
  readonly sourceType: string;
}

/** install/enable/disable/delete to the profile.* events; seqNumber orders them per eUICC and keys duplicates. */
function profileEvent(notification: ProfileNotification): NormalizedEvent {
  const { eid, iccid, seqNumber, operation } = notification;
  const envelope = {
    dedupeKey: `${eid}|${seqNumber}`,
    occurredAt: notification.occurredAt,
    device: { eid, iccid },
    sequence: seqNumber,
    sourceType: notification.sourceType,
    ...(notification.timeChosen ? { timeChosen: true as const } : {}),
  };
  switch (operation) {
    case "install": {
      const reason = notification.reason === undefined ? {} : { reason: notification.reason.slice(0, 500) };
      return {
        ...envelope,
        type: "profile.installed",
        data: { eid, iccid, result: notification.result ?? "failure", ...reason, seqNumber },
      };
    }
    case "enable":
      return { ...envelope, type: "profile.enabled", data: { eid, iccid, seqNumber } };
    case "disable":
      return { ...envelope, type: "profile.disabled", data: { eid, iccid, seqNumber } };
    case "delete":
      return { ...envelope, type: "profile.deleted", data: { eid, iccid, seqNumber } };
  }
}

// --- a. ES9+ handleNotification ---------------------------------------------------------

function handleNotificationItem(body: Record<string, unknown>, request: IngestRequest, anchors: readonly X509Certificate[]): AdapterItem {
  const encoded = body["pendingNotification"];
  const path = "pendingNotification";
  if (typeof encoded !== "string" || !isBase64(encoded))
    return refused(0, [{ path, message: "must be the base64 of a DER PendingNotification" }]);
  let notification: PendingNotification;
  try {
    notification = decodePendingNotification(Buffer.from(encoded, "base64"));
  } catch (error) {
    if (!(error instanceof DerDecodeError)) throw error;
    return refused(0, [{ path: error.path ? `${path}.${error.path}` : path, message: error.message }]);
  }
  const metadataPath =
    notification.kind === "profileInstallationResult"
      ? `${path}.notificationMetadata`
      : `${path}.${notification.compact ? "compactOtherSignedNotification." : ""}tbsOtherNotification`;
  const presented = presentedCertificates(notification, body);
  if (!presented.ok) return unverifiedItem(presented.issue);
  const verified = verifyEuiccSigned(notification.signed, presented.value, anchors, request.now);
  if (!verified.ok) return unverifiedItem(verified.issue);
  const eid = eidOf(verified.eid, request);
  if (!eid.ok) return unverifiedItem(eid.issue);
  const { seqNumber, operation, iccid } = notification.metadata;
  if (iccid === undefined) return refused(0, [{ path: `${metadataPath}.iccid`, message: "the notification names no ICCID" }]);
  if (notification.kind === "profileInstallationResult" && operation !== "install") {
    return refused(0, [
      { path: `${metadataPath}.profileManagementOperation`, message: "a ProfileInstallationResult must report notificationInstall" },
    ]);
  }
  const finalResult = notification.kind === "profileInstallationResult" ? notification.finalResult : undefined;
  return checkedItem(0, [
    profileEvent({
      eid: eid.value,
      iccid,
      seqNumber,
      operation,
      ...(finalResult === undefined ? {} : { result: finalResult.outcome === "success" ? "success" : "failure" }),
      ...(finalResult?.outcome === "error" ? { reason: finalResult.description } : {}),
      occurredAt: request.now.toISOString(),
      timeChosen: true,
      sourceType:
        notification.kind === "profileInstallationResult"
          ? "ProfileInstallationResult"
          : `${notification.compact ? "Compact" : ""}OtherSignedNotification:${operation}`,
    }),
  ]);
}

/** The verified certificate's EID; a header or parameter that contradicts it is refused rather than trusted. */
function eidOf(certified: string, request: IngestRequest): { ok: true; value: string } | { ok: false; issue: FieldIssue } {
  const declared = request.headers["x-eid"] ?? queryParameter(request.url, "eid");
  if (declared !== undefined && declared !== certified) {
    return {
      ok: false,
      issue: { path: "eid", message: `the x-eid header or eid parameter (${declared}) contradicts the eUICC certificate (${certified})` },
    };
  }
  const checked = eidSchema.safeParse(certified);
  if (!checked.success) return { ok: false, issue: { path: "eid", message: checked.error.issues[0]?.message ?? "invalid EID" } };
  return { ok: true, value: checked.data };
}

/** Refused because its origin cannot be verified: recorded as refused. */
const unverifiedItem = (issue: FieldIssue): AdapterItem => ({ index: 0, ok: false, issues: [issue], unverified: true });

/** The certificates inside an OtherSignedNotification, else those the eIM sent beside it. */
function presentedCertificates(
  notification: PendingNotification,
  body: Record<string, unknown>,
): { ok: true; value: PresentedCertificates } | { ok: false; issue: FieldIssue } {
  if (notification.kind === "otherSignedNotification" && notification.certificates) return { ok: true, value: notification.certificates };
  const value: { euicc?: Uint8Array; eum?: Uint8Array } = {};
  for (const [field, name] of [
    ["euiccCertificate", "euicc"],
    ["eumCertificate", "eum"],
  ] as const) {
    const given = body[field];
    if (given === undefined) continue;
    if (typeof given !== "string" || !isBase64(given))
      return { ok: false, issue: { path: field, message: "must be the base64 of a DER certificate" } };
    value[name] = new Uint8Array(Buffer.from(given, "base64"));
  }
  return { ok: true, value };
}

/** Trust anchors are checked when they are configured; one that cannot be read verifies nothing. */
function trustAnchorsOf(pems: readonly string[] | undefined): X509Certificate[] {
  try {
    return parseTrustAnchors(pems ?? []);
  } catch {
    throw new SimrootError(
      "source.trust_anchors_invalid",
      "input",
      "The source's trust anchors are not PEM certificates: rotate its credentials with valid ones",
    );
  }
}

// --- b. eIM vendor JSON -------------------------------------------------------------------

const iccidField = z
  .string()
  .regex(/^\d{18,20}[Ff]?$/, "an ICCID is 18 to 20 digits, optionally padded with F")
  .transform((iccid) => iccid.replace(/[Ff]$/, ""));

const vendorEnvelopeSchema = z.object({ eid: eidSchema, notifications: z.array(z.unknown()) });

const vendorNotificationSchema = z
  .object({
    seqNumber: z.number().int().nonnegative(),
    operation: z.enum(notificationOperations),
    iccid: iccidField,
    result: z.enum(["success", "failure"]).optional(),
    reason: z.string().max(500).optional(),
    timestamp: timestampSchema.optional(),
  })
  .refine((notification) => notification.operation !== "install" || notification.result !== undefined, {
    path: ["result"],
    message: "an install notification needs its result",
  });

function vendorNotificationItems(body: Record<string, unknown>, now: Date): AdapterItem[] {
  const envelope = vendorEnvelopeSchema.safeParse(body);
  if (!envelope.success)
    throw new SimrootError("ingest.invalid_body", "input", "Invalid eIM notification body", { issues: zodIssues(envelope.error) });
  return atMostPerRequest(envelope.data.notifications, "notifications").map((raw, index) => {
    const parsed = vendorNotificationSchema.safeParse(raw);
    if (!parsed.success) return refused(index, zodIssues(parsed.error));
    const notification = parsed.data;
    return checkedItem(index, [
      profileEvent({
        eid: envelope.data.eid,
        iccid: notification.iccid,
        seqNumber: notification.seqNumber,
        operation: notification.operation,
        ...(notification.result === undefined ? {} : { result: notification.result }),
        ...(notification.reason === undefined ? {} : { reason: notification.reason }),
        occurredAt: notification.timestamp ?? now.toISOString(),
        ...(notification.timestamp === undefined ? { timeChosen: true } : {}),
        sourceType: `eim:${notification.operation}`,
      }),
    ]);
  });
}

// --- c. ES2+ handleDownloadProgressInfo ---------------------------------------------------

/** SGP.22 §5.3.5 notification points. */
const notificationPoints: Readonly<Record<number, string>> = {
  1: "eligibility and retry limit check",
  2: "confirmation failure",
  3: "BPP download",
  4: "BPP installation",
};
const bppInstallation = 4;

const downloadProgressSchema = z.object({
  header: z.object({ functionRequesterIdentifier: z.string(), functionCallIdentifier: z.string() }),
  eid: eidSchema.optional(),
  iccid: iccidField,
  profileType: z.string().max(200).optional(),
  timestamp: timestampSchema,
  notificationPointId: z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/).transform(Number)]),
  notificationPointStatus: z.object({
    status: z.enum(["Executed-Success", "Executed-WithWarning", "Failed", "Expired"]),
    statusCodeData: z
      .object({
        subjectCode: z.string().optional(),
        reasonCode: z.string().optional(),
        subjectIdentifier: z.string().optional(),
        message: z.string().optional(),
      })
      .optional(),
  }),
});

/**
 * Installation succeeded when point 4 (BPP installation) executed; it failed when any point
 * ended Failed or Expired (the download stops there). Other points are progress, recorded only.
 */
function downloadProgressItem(body: Record<string, unknown>): AdapterItem {
  const parsed = downloadProgressSchema.safeParse(body);
  if (!parsed.success) return refused(0, zodIssues(parsed.error));
  const { eid, iccid, timestamp, notificationPointId, notificationPointStatus, profileType } = parsed.data;
  const { status, statusCodeData } = notificationPointStatus;
  const failed = status === "Failed" || status === "Expired";
  const envelope = {
    dedupeKey: `${eid ?? ""}|${iccid}|${notificationPointId}|${timestamp}`,
    occurredAt: timestamp,
    device: { ...(eid === undefined ? {} : { eid }), iccid },
    sourceType: `handleDownloadProgressInfo:${notificationPointId}:${status}`,
  };
  if (!failed && notificationPointId !== bppInstallation) {
    const summary = {
      notificationPointId,
      notificationPoint: notificationPoints[notificationPointId] ?? "unknown",
      status,
      ...(profileType === undefined ? {} : { profileType }),
    };
    return checkedItem(0, [{ ...envelope, type: "source.unhandled", data: { sourceType: envelope.sourceType, summary } }]);
  }
  if (eid === undefined) return refused(0, [{ path: "eid", message: "a download outcome needs the EID of the eUICC" }]);
  const reason = failed ? statusReason(notificationPointId, status, statusCodeData) : undefined;
  return checkedItem(0, [
    {
      ...envelope,
      type: "profile.installed",
      data: { eid, iccid, result: failed ? "failure" : "success", ...(reason === undefined ? {} : { reason }) },
    },
  ]);
}

function statusReason(
  point: number,
  status: string,
  code: { subjectCode?: string; reasonCode?: string; message?: string } | undefined,
): string {
  const codes = code?.subjectCode || code?.reasonCode ? ` subjectCode ${code.subjectCode ?? "-"} reasonCode ${code.reasonCode ?? "-"}` : "";
  const message = code?.message ? `: ${code.message}` : "";
  return `${status} at ${notificationPoints[point] ?? `notification point ${point}`}${codes}${message}`.slice(0, 500);
}

// --- shared -------------------------------------------------------------------------------

const invalidBody = invalidBodyOf("eIM body");

function isBase64(text: string): boolean {
  return text.length > 0 && /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text);
}

function queryParameter(url: string, name: string): string | undefined {
  try {
    return new URL(url).searchParams.get(name) ?? undefined;
  } catch {
    return undefined;
  }
}
