/**
 * Strict DER decoding of the notifications an eUICC signs (GSMA SGP.22, reused unchanged by
 * SGP.32 eSIM IoT): `PendingNotification`, as an SM-DP+ or eIM receives it in ES9+ / ESipa
 * handleNotification. `der.ts` reads the TLVs (DER only); this file checks the tags against the
 * ASN.1 and reads the fields.
 *
 * The ASN.1 is SGP.22 `RSPDefinitions` as published in osmocom/pysim
 * (pySim/esim/asn1/rsp/rsp.asn), module header `AUTOMATIC TAGS EXTENSIBILITY IMPLIED`:
 *
 *   PendingNotification ::= CHOICE {
 *     profileInstallationResult [55] ProfileInstallationResult,   -- 'BF37'
 *     otherSignedNotification OtherSignedNotification }            -- '30'
 *   ProfileInstallationResult ::= [55] SEQUENCE {
 *     profileInstallationResultData [39] ProfileInstallationResultData,  -- 'BF27'
 *     euiccSignPIR EuiccSignPIR }                                  -- [APPLICATION 55] '5F37'
 *   ProfileInstallationResultData ::= [39] SEQUENCE {
 *     transactionId [0] TransactionId,                             -- '80'
 *     notificationMetadata [47] NotificationMetadata,              -- 'BF2F'
 *     smdpOid OBJECT IDENTIFIER OPTIONAL,                          -- '06'
 *     finalResult [2] CHOICE {                                     -- 'A2' (a tag on a CHOICE is explicit)
 *       successResult SuccessResult,                               -- 'A0' (automatic tag)
 *       errorResult ErrorResult } }                                -- 'A1'
 *   ErrorResult ::= SEQUENCE { bppCommandId BppCommandId, errorReason ErrorReason,
 *     simaResponse OCTET STRING OPTIONAL }                         -- automatic tags '80' '81' '82'
 *   NotificationMetadata ::= [47] SEQUENCE {                       -- 'BF2F'
 *     seqNumber [0] INTEGER,                                       -- '80'
 *     profileManagementOperation [1] NotificationEvent,            -- '81', BIT STRING, one bit set
 *     notificationAddress UTF8String,                              -- '0C'
 *     iccid Iccid OPTIONAL }                                       -- [APPLICATION 26] '5A', BCD nibble-swapped
 *   OtherSignedNotification ::= SEQUENCE {
 *     tbsOtherNotification NotificationMetadata,
 *     euiccNotificationSignature [APPLICATION 55] OCTET STRING,    -- '5F37'
 *     euiccCertificate Certificate, eumCertificate Certificate }
 *
 * SGP.32 (onomondo/onomondo-eim, SGP32Definitions.asn1 §5.14.7) extends the CHOICE with compact
 * forms for constrained links: compactProfileInstallationResult [0] ('A0', no ICCID: the eIM knows
 * it from the download) and compactOtherSignedNotification [1] ('A1') { NotificationMetadata,
 * signature }, without certificates. The compact other notification is decoded; the compact
 * installation result is refused, since a profile event cannot be recorded without its ICCID.
 *
 * The same tags appear in the SGP.22 comments of lpa implementations that walk these bytes by
 * hand ('BF27', 'BF2F', '5A', 'A2', 'A0'/'A1', '80'/'81'/'82').
 *
 * Because the module is EXTENSIBILITY IMPLIED, later versions may append components to a
 * SEQUENCE: known components must be present, in order and correctly encoded; components after
 * them are ignored. The encoding itself must be DER (definite, minimal lengths; no trailing bytes).
 *
 * The decoder also hands back what the eUICC signed (the exact DER of profileInstallationResultData
 * or tbsOtherNotification), the signature and the certificates carried: `eim-verify.ts` checks
 * them against the source's trust anchors (CERT.EUICC -> CERT.EUM -> CERT.CI).
 */
import { type DerValue, DerError, objectIdentifier, readDer } from "./der.ts";

/** Why a DER value was refused; `path` names the ASN.1 component (e.g. `notificationMetadata.iccid`). */
export class DerDecodeError extends Error {
  readonly path: string;

  constructor(path: string, message: string) {
    super(message);
    this.name = "DerDecodeError";
    this.path = path;
  }
}

/** The NotificationEvent bits, in bit order: notificationInstall(0) ... notificationDelete(3). */
export const notificationOperations = ["install", "enable", "disable", "delete"] as const;
export type NotificationOperation = (typeof notificationOperations)[number];

export interface NotificationMetadata {
  readonly seqNumber: number;
  readonly operation: NotificationOperation;
  readonly notificationAddress: string;
  /** Decimal digits, the 'F' padding removed. */
  readonly iccid?: string;
}

export type FinalResult =
  | { readonly outcome: "success" }
  | { readonly outcome: "error"; readonly bppCommandId: number; readonly errorReason: number; readonly description: string };

/** What the eUICC signed: the DER of the signed component as received, and the signature (TR-03111 r||s). */
export interface EuiccSigned {
  readonly data: Uint8Array;
  readonly signature: Uint8Array;
}

export type PendingNotification = (
  | {
      readonly kind: "profileInstallationResult";
      /** Hex of the SM-DP+ TransactionId. */
      readonly transactionId: string;
      readonly metadata: NotificationMetadata;
      readonly finalResult: FinalResult;
    }
  | {
      readonly kind: "otherSignedNotification";
      /** SGP.32 compactOtherSignedNotification: no certificates. */
      readonly compact: boolean;
      readonly metadata: NotificationMetadata;
      /** The euiccCertificate subject's serialNumber (SGP.22: the EID), when present. */
      readonly euiccCertificateSerialNumber?: string;
      /** The DER of euiccCertificate and eumCertificate (absent in the compact form). */
      readonly certificates?: { readonly euicc: Uint8Array; readonly eum: Uint8Array };
    }
) & { readonly signed: EuiccSigned };

const universal = 1;
const application = 2;
const contextSpecific = 3;

interface TagSpec {
  readonly tagClass: number;
  readonly tagNumber: number;
  readonly constructed: boolean;
  /** How the tag is written in the specs, for messages. */
  readonly label: string;
}

const tag = (tagClass: number, tagNumber: number, constructed: boolean, label: string): TagSpec => ({
  tagClass,
  tagNumber,
  constructed,
  label,
});

const tags = {
  profileInstallationResult: tag(contextSpecific, 55, true, "[55] 'BF37'"),
  compactProfileInstallationResult: tag(contextSpecific, 0, true, "[0] 'A0'"),
  compactOtherSignedNotification: tag(contextSpecific, 1, true, "[1] 'A1'"),
  profileInstallationResultData: tag(contextSpecific, 39, true, "[39] 'BF27'"),
  notificationMetadata: tag(contextSpecific, 47, true, "[47] 'BF2F'"),
  transactionId: tag(contextSpecific, 0, false, "[0] '80'"),
  finalResult: tag(contextSpecific, 2, true, "[2] 'A2'"),
  successResult: tag(contextSpecific, 0, true, "[0] 'A0'"),
  errorResult: tag(contextSpecific, 1, true, "[1] 'A1'"),
  bppCommandId: tag(contextSpecific, 0, false, "[0] '80'"),
  errorReason: tag(contextSpecific, 1, false, "[1] '81'"),
  seqNumber: tag(contextSpecific, 0, false, "[0] '80'"),
  profileManagementOperation: tag(contextSpecific, 1, false, "[1] '81'"),
  notificationAddress: tag(universal, 12, false, "UTF8String '0C'"),
  iccid: tag(application, 26, false, "[APPLICATION 26] '5A'"),
  euiccSignature: tag(application, 55, false, "[APPLICATION 55] '5F37'"),
  objectIdentifier: tag(universal, 6, false, "OBJECT IDENTIFIER '06'"),
  sequence: tag(universal, 16, true, "SEQUENCE '30'"),
  set: tag(universal, 17, true, "SET '31'"),
  printableString: tag(universal, 19, false, "PrintableString '13'"),
  utf8String: tag(universal, 12, false, "UTF8String '0C'"),
  certificateVersion: tag(contextSpecific, 0, true, "[0] 'A0'"),
};

const bppCommandNames = [
  "initialiseSecureChannel",
  "configureISDP",
  "storeMetadata",
  "storeMetadata2",
  "replaceSessionKeys",
  "loadProfileElements",
];

/** SGP.22 ErrorReason (13 is installFailedDueToDataMismatch in SGP.22 v2.2+, IccidMismatch in older texts). */
const errorReasonNames: Readonly<Record<number, string>> = {
  1: "incorrectInputValues",
  2: "invalidSignature",
  3: "invalidTransactionId",
  4: "unsupportedCrtValues",
  5: "unsupportedRemoteOperationType",
  6: "unsupportedProfileClass",
  7: "scp03tStructureError",
  8: "scp03tSecurityError",
  9: "installFailedDueToIccidAlreadyExistsOnEuicc",
  10: "installFailedDueToInsufficientMemoryForProfile",
  11: "installFailedDueToInterruption",
  12: "installFailedDueToPEProcessingError",
  13: "installFailedDueToDataMismatch",
  14: "testProfileInstallFailedDueToInvalidNaaKey",
  15: "pprNotAllowed",
  127: "installFailedDueToUnknownError",
};

/** X.520 serialNumber attribute, which carries the EID in CERT.EUICC.ECDSA (SGP.22 §4.5.2). */
const serialNumberAttribute = "2.5.4.5";

type Node = DerValue;

export function decodePendingNotification(der: Uint8Array): PendingNotification {
  const root = parseDer(der);
  if (matches(root, tags.profileInstallationResult)) return profileInstallationResult(root);
  if (matches(root, tags.sequence)) return otherSignedNotification(root);
  if (matches(root, tags.compactOtherSignedNotification)) return compactOtherSignedNotification(root);
  if (matches(root, tags.compactProfileInstallationResult)) {
    throw new DerDecodeError(
      "compactProfileInstallationResult",
      "an SGP.32 compact ProfileInstallationResult names no ICCID; send the full ProfileInstallationResult",
    );
  }
  throw new DerDecodeError(
    "",
    `not a PendingNotification: expected ProfileInstallationResult ${tags.profileInstallationResult.label}, OtherSignedNotification (SEQUENCE '30') or compactOtherSignedNotification ${tags.compactOtherSignedNotification.label}, found ${describeTag(root)}`,
  );
}

function profileInstallationResult(root: Node): PendingNotification {
  const [data, signature] = components(root, "profileInstallationResult", 2);
  expectTag(signature, tags.euiccSignature, "euiccSignPIR");
  const fields = components(
    expectTag(data, tags.profileInstallationResultData, "profileInstallationResultData"),
    "profileInstallationResultData",
    3,
  );
  const [transactionIdNode, metadataNode] = fields;
  const transactionId = primitiveBytes(expectTag(transactionIdNode, tags.transactionId, "transactionId"), "transactionId");
  if (transactionId.length < 1 || transactionId.length > 16) {
    throw new DerDecodeError("transactionId", "transactionId must be 1 to 16 octets");
  }
  let next = 2;
  if (fields[next] !== undefined && matches(fields[next]!, tags.objectIdentifier)) next++; // smdpOid OPTIONAL
  return {
    kind: "profileInstallationResult",
    transactionId: Buffer.from(transactionId).toString("hex").toUpperCase(),
    metadata: notificationMetadata(metadataNode, "notificationMetadata"),
    finalResult: finalResult(fields[next]),
    signed: signedBy(data!, signature!),
  };
}

function finalResult(node: Node | undefined): FinalResult {
  const [choice] = components(expectTag(node, tags.finalResult, "finalResult"), "finalResult", 1);
  if (matches(choice!, tags.successResult)) return { outcome: "success" };
  const [commandNode, reasonNode] = components(expectTag(choice, tags.errorResult, "finalResult"), "finalResult.errorResult", 2);
  const bppCommandId = integer(
    expectTag(commandNode, tags.bppCommandId, "finalResult.errorResult.bppCommandId"),
    "finalResult.errorResult.bppCommandId",
  );
  const errorReason = integer(
    expectTag(reasonNode, tags.errorReason, "finalResult.errorResult.errorReason"),
    "finalResult.errorResult.errorReason",
  );
  const reasonName = errorReasonNames[errorReason] ?? "errorReason";
  const commandName = bppCommandNames[bppCommandId] ?? "bppCommandId";
  return {
    outcome: "error",
    bppCommandId,
    errorReason,
    description: `${reasonName} (${errorReason}) at ${commandName} (${bppCommandId})`,
  };
}

function otherSignedNotification(root: Node): PendingNotification {
  const [metadataNode, signature, euiccCertificate, eumCertificate] = components(root, "otherSignedNotification", 4);
  expectTag(signature, tags.euiccSignature, "euiccNotificationSignature");
  const serialNumber = subjectSerialNumber(expectTag(euiccCertificate, tags.sequence, "euiccCertificate"), "euiccCertificate");
  expectTag(eumCertificate, tags.sequence, "eumCertificate");
  return {
    kind: "otherSignedNotification",
    compact: false,
    metadata: notificationMetadata(metadataNode, "tbsOtherNotification"),
    ...(serialNumber === undefined ? {} : { euiccCertificateSerialNumber: serialNumber }),
    certificates: { euicc: encoded(euiccCertificate!), eum: encoded(eumCertificate!) },
    signed: signedBy(metadataNode!, signature!),
  };
}

function compactOtherSignedNotification(root: Node): PendingNotification {
  const [metadataNode, signature] = components(root, "compactOtherSignedNotification", 2);
  expectTag(signature, tags.euiccSignature, "compactOtherSignedNotification.euiccNotificationSignature");
  return {
    kind: "otherSignedNotification",
    compact: true,
    metadata: notificationMetadata(metadataNode, "compactOtherSignedNotification.tbsOtherNotification"),
    signed: signedBy(metadataNode!, signature!),
  };
}

/** The exact bytes received for a component (what a signature covers), tag and length included. */
const encoded = (node: Node) => new Uint8Array(node.encoded);

const signedBy = (data: Node, signature: Node): EuiccSigned => ({
  data: encoded(data),
  signature: new Uint8Array(primitiveBytes(signature, "signature")),
});

function notificationMetadata(node: Node | undefined, path: string): NotificationMetadata {
  const fields = components(expectTag(node, tags.notificationMetadata, path), path, 3);
  const [seqNode, operationNode, addressNode, iccidNode] = fields;
  const seqNumber = integer(expectTag(seqNode, tags.seqNumber, `${path}.seqNumber`), `${path}.seqNumber`);
  const operation = notificationEvent(
    expectTag(operationNode, tags.profileManagementOperation, `${path}.profileManagementOperation`),
    `${path}.profileManagementOperation`,
  );
  const notificationAddress = utf8(
    expectTag(addressNode, tags.notificationAddress, `${path}.notificationAddress`),
    `${path}.notificationAddress`,
  );
  const iccid = iccidNode !== undefined && matches(iccidNode, tags.iccid) ? bcdIccid(iccidNode, `${path}.iccid`) : undefined;
  return { seqNumber, operation, notificationAddress, ...(iccid === undefined ? {} : { iccid }) };
}

/** NotificationEvent ::= BIT STRING; exactly one of bits 0..3 set. */
function notificationEvent(node: Node, path: string): NotificationOperation {
  const bytes = primitiveBytes(node, path);
  const unusedBits = bytes[0];
  if (unusedBits === undefined || unusedBits > 7 || (bytes.length === 1 && unusedBits !== 0)) {
    throw new DerDecodeError(path, "malformed BIT STRING");
  }
  const last = bytes[bytes.length - 1]!;
  if (bytes.length > 1 && (last & ((1 << unusedBits) - 1)) !== 0) {
    throw new DerDecodeError(path, "BIT STRING unused bits must be zero in DER");
  }
  const setBits: number[] = [];
  for (let bit = 0; bit < (bytes.length - 1) * 8 - unusedBits; bit++) {
    if ((bytes[1 + (bit >> 3)]! & (0x80 >> (bit & 7))) !== 0) setBits.push(bit);
  }
  const operation = setBits.length === 1 ? notificationOperations[setBits[0]!] : undefined;
  if (operation === undefined) {
    throw new DerDecodeError(
      path,
      "exactly one of notificationInstall(0), notificationEnable(1), notificationDisable(2), notificationDelete(3) must be set",
    );
  }
  return operation;
}

/** Iccid ::= [APPLICATION 26] OCTET STRING (SIZE(10)), coded as EF.ICCID: BCD, nibbles swapped, 'F'-padded. */
function bcdIccid(node: Node, path: string): string {
  const bytes = primitiveBytes(node, path);
  if (bytes.length !== 10) throw new DerDecodeError(path, "an Iccid is 10 octets");
  let nibbles = "";
  for (const byte of bytes) nibbles += (byte & 0x0f).toString(16) + (byte >> 4).toString(16);
  const iccid = nibbles.toUpperCase().replace(/F+$/, "");
  if (!/^\d{18,20}$/.test(iccid)) throw new DerDecodeError(path, "an Iccid holds 18 to 20 BCD digits, padded with 'F'");
  return iccid;
}

/** A DER INTEGER that must be non-negative and a safe JavaScript integer. */
function integer(node: Node, path: string): number {
  const bytes = primitiveBytes(node, path);
  const [first, second] = bytes;
  if (first === undefined) throw new DerDecodeError(path, "an INTEGER has at least one content octet");
  if (second !== undefined && ((first === 0x00 && second < 0x80) || (first === 0xff && second >= 0x80))) {
    throw new DerDecodeError(path, "INTEGER is not minimally encoded (not DER)");
  }
  if (first >= 0x80) throw new DerDecodeError(path, "must not be negative");
  const value = BigInt(`0x${Buffer.from(bytes).toString("hex")}`);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new DerDecodeError(path, "INTEGER too large");
  return Number(value);
}

function utf8(node: Node, path: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(primitiveBytes(node, path));
  } catch {
    throw new DerDecodeError(path, "not valid UTF-8");
  }
}

/**
 * The subject serialNumber of an X.509 Certificate (RFC 5280): tbsCertificate is
 * { [0] version OPTIONAL, serialNumber, signature, issuer, validity, subject, ... }.
 */
function subjectSerialNumber(certificate: Node, path: string): string | undefined {
  const [tbs] = components(certificate, path, 3);
  const fields = components(expectTag(tbs, tags.sequence, `${path}.tbsCertificate`), `${path}.tbsCertificate`, 6);
  const subjectIndex = matches(fields[0]!, tags.certificateVersion) ? 5 : 4;
  const subject = expectTag(fields[subjectIndex], tags.sequence, `${path}.tbsCertificate.subject`);
  for (const rdn of components(subject, `${path}.tbsCertificate.subject`, 0)) {
    for (const attribute of components(expectTag(rdn, tags.set, `${path}.tbsCertificate.subject`), `${path}.tbsCertificate.subject`, 1)) {
      const [type, value] = components(
        expectTag(attribute, tags.sequence, `${path}.tbsCertificate.subject`),
        `${path}.tbsCertificate.subject`,
        2,
      );
      if (matches(type!, tags.objectIdentifier) && oid(type!, `${path}.tbsCertificate.subject`) === serialNumberAttribute) {
        if (matches(value!, tags.printableString) || matches(value!, tags.utf8String))
          return utf8(value!, `${path}.tbsCertificate.subject.serialNumber`);
        throw new DerDecodeError(`${path}.tbsCertificate.subject.serialNumber`, "serialNumber must be a PrintableString or UTF8String");
      }
    }
  }
  return undefined;
}

/** An OBJECT IDENTIFIER's dotted form; a malformed one is refused like any other malformed component. */
function oid(node: Node, path: string): string {
  try {
    return objectIdentifier(node.content);
  } catch (error) {
    if (error instanceof DerError) throw new DerDecodeError(path, error.message);
    throw error;
  }
}

function parseDer(der: Uint8Array): Node {
  try {
    return readDer(der);
  } catch (error) {
    if (error instanceof DerError) throw new DerDecodeError("", error.message);
    throw error;
  }
}

/** The components of a constructed node, at least `required` of them (further ones are extensions). */
function components(node: Node, path: string, required: number): readonly Node[] {
  const found = node.children;
  if (found.length < required) throw new DerDecodeError(path, `expected at least ${required} component(s), found ${found.length}`);
  return found;
}

function matches(node: Node, spec: TagSpec): boolean {
  return node.tagClass === spec.tagClass && node.tagNumber === spec.tagNumber && node.constructed === spec.constructed;
}

function expectTag(node: Node | undefined, spec: TagSpec, path: string): Node {
  if (node === undefined) throw new DerDecodeError(path, `missing (expected ${spec.label})`);
  if (!matches(node, spec)) throw new DerDecodeError(path, `expected ${spec.label}, found ${describeTag(node)}`);
  return node;
}

function primitiveBytes(node: Node, path: string): Uint8Array {
  if (node.constructed) throw new DerDecodeError(path, "expected a primitive encoding");
  return node.content;
}

function describeTag(node: Node): string {
  const className = ["", "UNIVERSAL", "APPLICATION", "", "PRIVATE"][node.tagClass] ?? "";
  const number = className === "" ? `[${node.tagNumber}]` : `[${className} ${node.tagNumber}]`;
  return `${number} ${node.constructed ? "constructed" : "primitive"}`;
}
