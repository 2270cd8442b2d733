/**
 * What `eim-verify.ts` reads of an X.509 certificate (RFC 5280) that Node's X509Certificate does not expose: the
 * subject's serialNumber attributes as DER encodes them (the EID, in CERT.EUICC.ECDSA) and the EID prefixes of a
 * nameConstraints extension (CERT.EUM.ECDSA, GSMA SGP.22 §4.5.2.1.0.2):
 *
 *   tbsCertificate ::= SEQUENCE { [0] version, serialNumber, signature, issuer, validity, subject Name,
 *     subjectPublicKeyInfo, [1] issuerUniqueID OPTIONAL, [2] subjectUniqueID OPTIONAL, [3] extensions OPTIONAL }
 *   Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
 *   NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees OPTIONAL, excludedSubtrees [1] ... OPTIONAL }
 *   GeneralSubtree ::= SEQUENCE { base GeneralName, minimum [0] DEFAULT 0, maximum [1] OPTIONAL }
 *   GeneralName directoryName [4] Name  -- explicit: Name is a CHOICE
 *
 * SGP.22 sets each permitted directoryName to { O = the EUM, serialNumber = its IIN or EIN }: a prefix of the EIDs
 * the EUM may certify, compared as a string prefix (RFC 5280's directoryName matching compares whole attributes and
 * cannot express it). The certificates were parsed by Node first; a structure this reader cannot follow throws DerError.
 */
import { type DerValue, DerError, objectIdentifier, readDer, tagClasses } from "./der.ts";

/** X.520 serialNumber: the EID in an eUICC certificate's subject, an EID prefix in an EUM's name constraints. */
const serialNumberAttribute = "2.5.4.5";
const nameConstraintsExtension = "2.5.29.30";

/** The EID prefixes a CA's name constraints permit and exclude (directoryName serialNumbers). */
export interface EidConstraints {
  readonly permitted: readonly string[];
  readonly excluded: readonly string[];
}

/** The values of every serialNumber attribute of the certificate's subject, in order. */
export function subjectSerialNumbers(certificate: Uint8Array): string[] {
  const fields = tbsFields(certificate);
  const subject = fields[fields[0] && isContext(fields[0], 0) ? 5 : 4];
  return serialNumbersOf(expectSequence(subject, "subject"));
}

/** The EID prefixes of the certificate's nameConstraints extension; undefined without one. */
export function eidConstraints(certificate: Uint8Array): EidConstraints | undefined {
  const extensions = tbsFields(certificate).find((field) => isContext(field, 3));
  if (extensions === undefined) return undefined;
  const found = expectSequence(extensions.children[0], "extensions").children.filter((extension) => {
    const [id] = expectSequence(extension, "extension").children;
    return id !== undefined && isUniversal(id, 6) && objectIdentifier(id.content) === nameConstraintsExtension;
  });
  if (found.length === 0) return undefined;
  if (found.length > 1) throw new DerError("more than one nameConstraints extension");
  const value = found[0]!.children[found[0]!.children.length - 1];
  if (value === undefined || !isUniversal(value, 4)) throw new DerError("nameConstraints: extnValue must be an OCTET STRING");
  const constraints = expectSequence(readDer(value.content), "nameConstraints").children;
  const subtrees = (tagNumber: number) =>
    constraints.filter((node) => isContext(node, tagNumber)).flatMap((node) => node.children.flatMap(directoryNameSerialNumber));
  return { permitted: subtrees(0), excluded: subtrees(1) };
}

/** Why `eid` is outside `constraints` (a clause for a message), or undefined when it is within. */
export function eidOutside(eid: string, { permitted, excluded }: EidConstraints): string | undefined {
  if (permitted.length > 0 && !permitted.some((prefix) => eid.startsWith(prefix))) return `name constraints: ${listed(permitted)}`;
  const excludedBy = excluded.find((prefix) => eid.startsWith(prefix));
  return excludedBy === undefined ? undefined : `excluded: ${excludedBy}`;
}

const listed = (prefixes: readonly string[]) =>
  prefixes.length > 10 ? `${prefixes.slice(0, 10).join(", ")} and ${prefixes.length - 10} more` : prefixes.join(", ");

/** A GeneralSubtree's base, when it is a directoryName with a serialNumber: that serialNumber (one at most). */
function directoryNameSerialNumber(subtree: DerValue): string[] {
  const [base] = expectSequence(subtree, "GeneralSubtree").children;
  if (base === undefined || !isContext(base, 4)) return [];
  const serialNumbers = serialNumbersOf(expectSequence(base.children[0], "directoryName"));
  if (serialNumbers.length > 1) throw new DerError("a directoryName of the name constraints holds more than one serialNumber");
  return serialNumbers;
}

/** Name ::= SEQUENCE OF SET OF AttributeTypeAndValue { type, value }: the serialNumber values. */
function serialNumbersOf(name: DerValue): string[] {
  const values: string[] = [];
  for (const rdn of name.children) {
    if (!isUniversal(rdn, 17)) throw new DerError("a Name's RelativeDistinguishedName must be a SET");
    for (const attribute of rdn.children) {
      const [type, value] = expectSequence(attribute, "AttributeTypeAndValue").children;
      if (type === undefined || value === undefined || !isUniversal(type, 6)) throw new DerError("malformed AttributeTypeAndValue");
      if (objectIdentifier(type.content) !== serialNumberAttribute) continue;
      // PrintableString (X.520's type for serialNumber) or UTF8String.
      if (!isUniversal(value, 19) && !isUniversal(value, 12)) throw new DerError("serialNumber must be a PrintableString or UTF8String");
      try {
        values.push(new TextDecoder("utf-8", { fatal: true }).decode(value.content));
      } catch {
        throw new DerError("serialNumber is not valid UTF-8");
      }
    }
  }
  return values;
}

function tbsFields(certificate: Uint8Array): readonly DerValue[] {
  const tbs = expectSequence(readDer(certificate).children[0], "tbsCertificate");
  if (tbs.children.length < 6) throw new DerError("tbsCertificate: too few components");
  return tbs.children;
}

const isUniversal = (node: DerValue, tagNumber: number) => node.tagClass === tagClasses.universal && node.tagNumber === tagNumber;
const isContext = (node: DerValue, tagNumber: number) =>
  node.tagClass === tagClasses.contextSpecific && node.tagNumber === tagNumber && node.constructed;

function expectSequence(node: DerValue | undefined, what: string): DerValue {
  if (node === undefined || !isUniversal(node, 16)) throw new DerError(`${what}: expected a SEQUENCE`);
  return node;
}
