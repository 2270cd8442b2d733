/**
 * A generated test PKI shaped like the GSMA eSIM one (SGP.22 §4.5.2): a self-signed GSMA CI
 * root, an EUM certificate it issues (a CA), and eUICC certificates the EUM issues, whose
 * subject serialNumber is the EID. ECDSA P-256 with SHA-256 throughout, as SGP.22 uses. The EUM
 * certificate carries the name constraints SGP.22 §4.5.2.1.0.2 gives it: permittedSubtrees of
 * directoryNames whose serialNumber is an EID prefix (the EUM's IIN or EIN) it may issue for.
 * X.509 v3 (RFC 5280) built with asn1js and signed with Node's crypto; Node's own
 * X509Certificate parses and verifies them. Notification signatures are TR-03111 r||s.
 */
import { generateKeyPairSync, sign, X509Certificate, type KeyObject } from "node:crypto";
import * as asn1js from "asn1js";

export interface TestCertificate {
  readonly der: Uint8Array;
  readonly pem: string;
  readonly privateKey: KeyObject;
  readonly name: [string, string][];
}

const ecdsaWithSha256 = () => new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: "1.2.840.10045.4.3.2" })] });

const distinguishedName = (attributes: [string, string][]) =>
  new asn1js.Sequence({
    value: attributes.map(
      ([type, value]) =>
        new asn1js.Set({
          value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: type }), new asn1js.PrintableString({ value })] })],
        }),
    ),
  });

const extension = (oid: string, critical: boolean, value: asn1js.BaseBlock) =>
  new asn1js.Sequence({
    value: [
      new asn1js.ObjectIdentifier({ value: oid }),
      new asn1js.Boolean({ value: critical }),
      new asn1js.OctetString({ valueHex: value.toBER() }),
    ],
  });

/**
 * nameConstraints (RFC 5280 §4.2.1.10) as SGP.22 gives an EUM certificate, critical: NameConstraints { permittedSubtrees
 * [0] { GeneralSubtree { directoryName [4] Name { O, serialNumber = EID prefix } } ... }, excludedSubtrees [1] alike }.
 */
function eidNameConstraints(organization: string, permitted: readonly string[], excluded: readonly string[]) {
  const directoryName = (prefix: string) =>
    new asn1js.Constructed({
      idBlock: { tagClass: 3, tagNumber: 4 },
      value: [
        distinguishedName([
          ["2.5.4.10", organization],
          ["2.5.4.5", prefix],
        ]),
      ],
    });
  const subtrees = (tagNumber: number, prefixes: readonly string[]) =>
    prefixes.length === 0
      ? []
      : [
          new asn1js.Constructed({
            idBlock: { tagClass: 3, tagNumber },
            value: prefixes.map((prefix) => new asn1js.Sequence({ value: [directoryName(prefix)] })),
          }),
        ];
  return extension("2.5.29.30", true, new asn1js.Sequence({ value: [...subtrees(0, permitted), ...subtrees(1, excluded)] }));
}

/** basicConstraints (CA or not), keyUsage (keyCertSign for a CA, digitalSignature otherwise), nameConstraints when given. */
function extensions(ca: boolean, nameConstraints?: asn1js.Sequence) {
  const basicConstraints = new asn1js.Sequence({
    value: ca ? [new asn1js.Boolean({ value: true }), new asn1js.Integer({ value: 0 })] : [],
  });
  const keyUsage = ca
    ? new asn1js.BitString({ valueHex: new Uint8Array([0x06]), unusedBits: 1 })
    : new asn1js.BitString({ valueHex: new Uint8Array([0x80]), unusedBits: 7 });
  return new asn1js.Constructed({
    idBlock: { tagClass: 3, tagNumber: 3 },
    value: [
      new asn1js.Sequence({
        value: [
          extension("2.5.29.19", true, basicConstraints),
          extension("2.5.29.15", true, keyUsage),
          ...(nameConstraints ? [nameConstraints] : []),
        ],
      }),
    ],
  });
}

export interface IssueOptions {
  readonly subject: [string, string][];
  /** The issuer; self-signed without. */
  readonly issuer?: TestCertificate;
  readonly ca: boolean;
  readonly serial?: number;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** EID prefixes for a name-constrained EUM certificate (SGP.22 §4.5.2.1.0.2); no nameConstraints without. */
  readonly eidPrefixes?: readonly string[];
  /** EID prefixes in excludedSubtrees (not in SGP.22's profile; RFC 5280 allows them). */
  readonly excludedEidPrefixes?: readonly string[];
}

export function issueCertificate(options: IssueOptions): TestCertificate {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const tbs = new asn1js.Sequence({
    value: [
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.Integer({ value: 2 })] }),
      new asn1js.Integer({ value: options.serial ?? 1 }),
      ecdsaWithSha256(),
      distinguishedName(options.issuer?.name ?? options.subject),
      new asn1js.Sequence({
        value: [
          new asn1js.UTCTime({ valueDate: options.notBefore ?? new Date("2025-01-01T00:00:00Z") }),
          new asn1js.GeneralizedTime({ valueDate: options.notAfter ?? new Date("2099-12-31T23:59:59Z") }),
        ],
      }),
      distinguishedName(options.subject),
      asn1js.fromBER(publicKey.export({ type: "spki", format: "der" })).result,
      extensions(
        options.ca,
        options.eidPrefixes === undefined && options.excludedEidPrefixes === undefined
          ? undefined
          : eidNameConstraints(organizationOf(options.subject), options.eidPrefixes ?? [], options.excludedEidPrefixes ?? []),
      ),
    ],
  });
  const signature = sign("sha256", Buffer.from(tbs.toBER()), options.issuer?.privateKey ?? privateKey);
  const der = new Uint8Array(
    new asn1js.Sequence({ value: [tbs, ecdsaWithSha256(), new asn1js.BitString({ valueHex: signature })] }).toBER(),
  );
  return { der, pem: new X509Certificate(Buffer.from(der)).toString(), privateKey, name: options.subject };
}

const organizationOf = (name: [string, string][]) => name.find(([type]) => type === "2.5.4.10")?.[1] ?? "";

/** The EID prefix (IIN) of the test EIDs (`89049032...`), which the test EUM is constrained to by default. */
const testEidPrefix = "89049032";

export interface TestPki {
  readonly ci: TestCertificate;
  readonly eum: TestCertificate;
  /** An eUICC certificate under the EUM, the EID as subject serialNumber. */
  readonly euicc: (eid: string, options?: Partial<IssueOptions>) => TestCertificate;
}

/** `eidPrefixes`: the EUM's name constraints (default: the test EIDs' prefix; null: an EUM certificate without any). */
export function createTestPki(
  label = "Test",
  options: { eidPrefixes?: readonly string[] | null; excludedEidPrefixes?: readonly string[] } = {},
): TestPki {
  const eidPrefixes = options.eidPrefixes === undefined ? [testEidPrefix] : options.eidPrefixes;
  const ci = issueCertificate({
    subject: [
      ["2.5.4.10", `${label} GSMA`],
      ["2.5.4.3", `${label} GSMA CI`],
    ],
    ca: true,
  });
  const eum = issueCertificate({
    subject: [
      ["2.5.4.10", `${label} EUM`],
      ["2.5.4.3", `${label} EUM`],
    ],
    issuer: ci,
    ca: true,
    serial: 2,
    ...(eidPrefixes === null ? {} : { eidPrefixes }),
    ...(options.excludedEidPrefixes === undefined ? {} : { excludedEidPrefixes: options.excludedEidPrefixes }),
  });
  return {
    ci,
    eum,
    euicc: (eid, options = {}) =>
      issueCertificate({
        subject: [
          ["2.5.4.10", `${label} EUM`],
          ["2.5.4.5", eid],
        ],
        issuer: eum,
        ca: false,
        serial: 3,
        ...options,
      }),
  };
}

/** ISO 7064 MOD 97-10 check digits, as SGP.29 specifies for the EID. */
export function withEidCheckDigits(first30: string): string {
  const remainder = Number(BigInt(`${first30}00`) % 97n);
  return `${first30}${String(98 - remainder).padStart(2, "0")}`;
}

/** An eUICC signature (SGP.22 §2.6.7: ECDSA with SHA-256, BSI TR-03111 plain r||s). */
export const euiccSign = (data: Uint8Array, key: KeyObject) => new Uint8Array(sign("sha256", data, { key, dsaEncoding: "ieee-p1363" }));

// --- SGP.22 DER builders (asn1js) --------------------------------------------------------

export const contextConstructed = (tagNumber: number, value: asn1js.BaseBlock[]) =>
  new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber }, value });
export const contextPrimitive = (tagNumber: number, bytes: Uint8Array) =>
  new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber }, valueHex: bytes });
export const applicationPrimitive = (tagNumber: number, bytes: Uint8Array) =>
  new asn1js.Primitive({ idBlock: { tagClass: 2, tagNumber }, valueHex: bytes });
export const integerContent = (value: number) => new Uint8Array(new asn1js.Integer({ value }).valueBlock.valueHexView);
export const der = (block: asn1js.BaseBlock) => new Uint8Array(block.toBER());
export const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
export const octets = (length: number, fill: number) => new Uint8Array(length).fill(fill);

export const operationBits = { install: 0, enable: 1, disable: 2, delete: 3 } as const;
export type Operation = keyof typeof operationBits;

/** NotificationEvent BIT STRING, DER: one content byte, the trailing unused bits counted. */
export function notificationEvent(...bits: number[]): Uint8Array {
  const highest = Math.max(...bits);
  return new Uint8Array([7 - highest, bits.reduce((byte, bit) => byte | (0x80 >> bit), 0)]);
}

/** EF.ICCID coding: BCD digits, nibbles swapped, padded with 'F' to 10 octets. */
export function bcdIccid(digits: string): Uint8Array {
  const padded = digits.padEnd(20, "F");
  return new Uint8Array(Array.from({ length: 10 }, (_, index) => parseInt(padded[2 * index + 1]! + padded[2 * index]!, 16)));
}

export interface MetadataOptions {
  /** null: no ICCID. */
  readonly iccid?: string | null;
  readonly bits?: number[];
  readonly extension?: boolean;
}

/** NotificationMetadata 'BF2F' { '80' seqNumber, '81' NotificationEvent, '0C' notificationAddress, '5A' Iccid }. */
export function notificationMetadata(seqNumber: number, operation: Operation, options: MetadataOptions = {}) {
  const profileIccid = options.iccid === undefined ? "8944500102198304826" : options.iccid;
  return contextConstructed(47, [
    contextPrimitive(0, integerContent(seqNumber)),
    contextPrimitive(1, notificationEvent(...(options.bits ?? [operationBits[operation]]))),
    new asn1js.Utf8String({ value: "eim.example.com" }),
    ...(profileIccid === null ? [] : [applicationPrimitive(26, bcdIccid(profileIccid))]),
    ...(options.extension ? [contextPrimitive(9, new Uint8Array([1]))] : []),
  ]);
}

/** A signed OtherSignedNotification (SGP.22) by `euicc`, carrying its certificate and the EUM's, ready for handleNotification. */
export function signedOtherNotification(
  seqNumber: number,
  operation: Operation,
  iccid: string,
  euicc: TestCertificate,
  eum: TestCertificate,
) {
  const metadata = notificationMetadata(seqNumber, operation, { iccid });
  return der(
    new asn1js.Sequence({
      value: [
        metadata,
        applicationPrimitive(55, euiccSign(der(metadata), euicc.privateKey)),
        asn1js.fromBER(euicc.der).result,
        asn1js.fromBER(eum.der).result,
      ],
    }),
  );
}
