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
 * 4. the EID is the verified eUICC certificate's subject serialNumber.
 *
 * The certificates come from the OtherSignedNotification itself; a ProfileInstallationResult
 * and an SGP.32 compact notification carry none, so the eIM forwards them beside it
 * (`euiccCertificate`, `eumCertificate`: base64 DER, as it received them in the session).
 */
import { X509Certificate, verify } from "node:crypto";
import type { FieldIssue } from "../../error.ts";
import type { EuiccSigned } from "./eim-asn1.ts";

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
  if (direct) path = [euicc, direct];
  else {
    const eum = certificate(presented.eum, "eumCertificate");
    if (!(eum instanceof X509Certificate)) return eum;
    if (!issuedBy(euicc, eum)) return refuse("euiccCertificate", "the eUICC certificate is not signed by the EUM certificate");
    const root = anchors.find((anchor) => issuedBy(eum, anchor));
    if (!root) return refuse("eumCertificate", "the EUM certificate does not chain to any trust anchor of this source");
    path = [euicc, eum, root];
  }
  const expired = path.find((cert) => !inValidity(cert, now));
  if (expired)
    return refuse("euiccCertificate", `a certificate on the path is outside its validity period (${expired.subject.replace(/\n/g, ", ")})`);
  const signatureValid =
    signed.signature.length === 64 && verify("sha256", signed.data, { key: euicc.publicKey, dsaEncoding: "ieee-p1363" }, signed.signature);
  if (!signatureValid) return refuse("pendingNotification", "the eUICC signature does not verify over the notification");
  const eid = /(?:^|\n)serialNumber=([^\n]+)/.exec(euicc.subject)?.[1];
  if (eid === undefined) return refuse("euiccCertificate", "the eUICC certificate names no EID (subject serialNumber)");
  return { ok: true, eid };
}
