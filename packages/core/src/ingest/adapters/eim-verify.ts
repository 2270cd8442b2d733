/**
 * Verification of an eUICC-signed notification (GSMA SGP.22 §5.7 / SGP.32, which reuses it):
 *
 * 1. the eUICC certificate (CERT.EUICC.ECDSA) chains to one of the source's trust anchors:
 *    directly to an EUM certificate the source trusts, or through the EUM certificate
 *    (CERT.EUM.ECDSA, a CA) to a GSMA CI root (CERT.CI.ECDSA) the source trusts;
 * 2. every certificate on the path is within its validity period and the issuers are CAs;
 * 3. the eUICC's signature (ECDSA with SHA-256, BSI TR-03111 plain r||s as SGP.22 §2.6.7
 *    specifies) verifies over the exact DER of what it covers: profileInstallationResultData
 *    for a ProfileInstallationResult (euiccSignPIR), tbsOtherNotification otherwise;
 * 4. the EID is the verified eUICC certificate's subject serialNumber (exactly one), and lies within the EID
 *    prefixes the EUM certificate's name constraints permit (see `certifiedEid`).
 *
 * The certificates come from the OtherSignedNotification itself; a ProfileInstallationResult
 * and an SGP.32 compact notification carry none, so the eIM forwards them beside it
 * (`euiccCertificate`, `eumCertificate`: base64 DER, as it received them in the session).
 */
import { X509Certificate, verify } from "node:crypto";
import type { FieldIssue } from "../../error.ts";
import { DerError } from "./der.ts";
import type { EuiccSigned } from "./eim-asn1.ts";
import { type EidConstraints, eidConstraints, eidOutside, subjectSerialNumbers } from "./eim-x509.ts";

export interface PresentedCertificates {
  readonly euicc?: Uint8Array;
  readonly eum?: Uint8Array;
}

export type Verification = { readonly ok: true; readonly eid: string } | { readonly ok: false; readonly issue: FieldIssue };

const refuse = (path: string, message: string): Verification => ({ ok: false, issue: { path, message } });

/** Parses PEM trust anchors (one or more certificates per string); throws on anything else. */
export function parseTrustAnchors(pems: readonly string[]): X509Certificate[] {
  return pems.flatMap((pem) => {
    const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new Error("not a PEM certificate");
    return blocks.map((block) => new X509Certificate(block));
  });
}

function certificate(der: Uint8Array | undefined, path: string): X509Certificate | Verification {
  if (der === undefined) return refuse(path, "missing: the eUICC certificate chain is needed to verify the notification");
  try {
    return new X509Certificate(Buffer.from(der));
  } catch {
    return refuse(path, "not an X.509 certificate");
  }
}

const inValidity = (cert: X509Certificate, now: Date) => new Date(cert.validFrom) <= now && now <= new Date(cert.validTo);

/** `child` was issued and signed by `issuer`, a CA. */
const issuedBy = (child: X509Certificate, issuer: X509Certificate) =>
  issuer.ca && child.checkIssued(issuer) && child.verify(issuer.publicKey);

export function verifyEuiccSigned(
  signed: EuiccSigned,
  presented: PresentedCertificates,
  anchors: readonly X509Certificate[],
  now: Date,
): Verification {
  if (anchors.length === 0) {
    return refuse(
      "pendingNotification",
      "this source has no trust anchors: configure its GSMA CI or EUM certificates (credentials.trustAnchors) to accept eUICC notifications",
    );
  }
  const euicc = certificate(presented.euicc, "euiccCertificate");
  if (!(euicc instanceof X509Certificate)) return euicc;
  if (euicc.ca) return refuse("euiccCertificate", "an eUICC certificate must not be a CA");
  const direct = anchors.find((anchor) => issuedBy(euicc, anchor));
  let path: X509Certificate[];
  let eum: X509Certificate | undefined;
  if (direct) path = [euicc, direct];
  else {
    const presentedEum = certificate(presented.eum, "eumCertificate");
    if (!(presentedEum instanceof X509Certificate)) return presentedEum;
    eum = presentedEum;
    if (!issuedBy(euicc, eum)) return refuse("euiccCertificate", "the eUICC certificate is not signed by the EUM certificate");
    const root = anchors.find((anchor) => issuedBy(presentedEum, anchor));
    if (!root) return refuse("eumCertificate", "the EUM certificate does not chain to any trust anchor of this source");
    path = [euicc, eum, root];
  }
  const expired = path.find((cert) => !inValidity(cert, now));
  if (expired)
    return refuse("euiccCertificate", `a certificate on the path is outside its validity period (${expired.subject.replace(/\n/g, ", ")})`);
  const signatureValid =
    signed.signature.length === 64 && verify("sha256", signed.data, { key: euicc.publicKey, dsaEncoding: "ieee-p1363" }, signed.signature);
  if (!signatureValid) return refuse("pendingNotification", "the eUICC signature does not verify over the notification");
  return certifiedEid(path, eum);
}

/**
 * The EID the eUICC certificate (`path[0]`) certifies: its one subject serialNumber, read from the DER (not from Node's
 * rendering of the subject, which shows the first of several), within the name constraints of every CA above it.
 *
 * SGP.22 §4.5.2.1.0.2 gives each EUM certificate a critical nameConstraints extension whose permittedSubtrees are
 * directoryNames { O, serialNumber = the EUM's IIN or EIN }, and §4.5.2.2 has the SM-DP+ check the EID against it: the
 * EID must start with one permitted serialNumber (and with no excluded one). Without it, any EUM under a GSMA CI could
 * certify another manufacturer's eUICCs. Only serialNumber is compared: it alone restricts the EID.
 *
 * An EUM certificate with no permitted EID prefix is refused on a path through a GSMA CI (SGP.22 requires the
 * constraint: the CI vouches for the EUM only within it). A certificate the source's operator configured itself as a
 * trust anchor (an EUM trusted directly, a private or test PKI) is held to the constraints it carries, and accepted
 * without: the operator, not a CI, chose what that anchor vouches for.
 */
function certifiedEid(path: readonly X509Certificate[], presentedEum: X509Certificate | undefined): Verification {
  const [euicc, ...issuers] = path;
  let eids: string[];
  try {
    eids = subjectSerialNumbers(new Uint8Array(euicc!.raw));
  } catch (error) {
    if (!(error instanceof DerError)) throw error;
    return refuse("euiccCertificate", `the eUICC certificate's subject cannot be read: ${error.message}`);
  }
  const [eid] = eids;
  if (eid === undefined) return refuse("euiccCertificate", "the eUICC certificate names no EID (subject serialNumber)");
  if (eids.length > 1)
    return refuse("euiccCertificate", `the eUICC certificate names ${eids.length} EIDs (subject serialNumber): it must name one`);
  for (const issuer of issuers) {
    const presented = issuer === presentedEum;
    const name = presented
      ? "the EUM certificate"
      : issuers.length === 1
        ? "the trusted EUM certificate"
        : "the trusted GSMA CI certificate";
    let constraints: EidConstraints | undefined;
    try {
      constraints = eidConstraints(new Uint8Array(issuer.raw));
    } catch (error) {
      if (!(error instanceof DerError)) throw error;
      return refuse(presented ? "eumCertificate" : "euiccCertificate", `${name}'s name constraints cannot be read: ${error.message}`);
    }
    if (presented && !constraints?.permitted.length) {
      return refuse(
        "eumCertificate",
        "the EUM certificate does not constrain the EIDs it may certify (SGP.22 §4.5.2.1.0.2: nameConstraints permittedSubtrees with the EUM's EID prefix as serialNumber)",
      );
    }
    const outside = constraints && eidOutside(eid, constraints);
    if (outside !== undefined) return refuse("euiccCertificate", `the EID ${eid} is outside the EIDs ${name} may certify (${outside})`);
  }
  return { ok: true, eid };
}
