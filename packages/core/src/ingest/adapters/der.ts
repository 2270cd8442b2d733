/**
 * A strict DER reader (ITU-T X.690 §8 and §10): tag, length and content of each value, and the
 * values inside a constructed one, with nothing else. It accepts DER only: definite lengths in
 * their shortest form, a tag number in the high form only when it needs it, no byte after the
 * end. What the values mean is the caller's (`eim-asn1.ts`).
 *
 * It replaces asn1js (about 64 KB minified) in the ingest path, which needed none of its types:
 * `der.test.ts` holds the two to the same reading of valid values and to refusing what asn1js
 * reports as an error.
 */

export class DerError extends Error {
  override readonly name = "DerError";
}

/** Tag classes as X.690 numbers them, plus one (asn1js's numbering, and that of `eim-asn1.ts`). */
export const tagClasses = { universal: 1, application: 2, contextSpecific: 3, private: 4 } as const;

export interface DerValue {
  readonly tagClass: number;
  readonly tagNumber: number;
  readonly constructed: boolean;
  /** The value's bytes as received: identifier, length and content. */
  readonly encoded: Uint8Array;
  readonly content: Uint8Array;
  /** The values inside a constructed value, in order (none for a primitive). */
  readonly children: readonly DerValue[];
}

/** Nesting deeper than any SGP.22 structure or X.509 certificate: refused, not recursed into. */
const maxDepth = 32;
/**
 * More values than a notification and the two certificates beside it hold (about 200): refused when the reader comes
 * to the next one. Two bytes make a value (`05 00`), so a webhook's 740 KB of DER held 370,000 of them, which took 2 s
 * and 130 MB to read (review 78).
 */
const maxValues = 2048;

/** One DER value filling `bytes` exactly. */
export function readDer(bytes: Uint8Array): DerValue {
  if (bytes.length === 0) throw new DerError("empty DER value");
  const { value, end } = readValue(bytes, 0, bytes.length, 0, { read: 0 });
  if (end !== bytes.length) throw new DerError(`${bytes.length - end} byte(s) after the end of the DER value`);
  return value;
}

function readValue(
  bytes: Uint8Array,
  start: number,
  limit: number,
  depth: number,
  count: { read: number },
): { value: DerValue; end: number } {
  if (depth > maxDepth) throw new DerError(`malformed DER: nested more than ${maxDepth} deep`);
  if (++count.read > maxValues) throw new DerError(`malformed DER: more than ${maxValues} values`);
  let at = start;
  const first = byteAt(bytes, at++, limit, "identifier");
  const tagClass = (first >> 6) + 1;
  const constructed = (first & 0x20) !== 0;
  let tagNumber = first & 0x1f;
  if (tagNumber === 0x1f) {
    // High tag number form: base 128, most significant group first, no leading zero group.
    tagNumber = 0;
    for (let groups = 0; ; groups++) {
      const next = byteAt(bytes, at++, limit, "tag number");
      if (groups === 0 && next === 0x80) throw new DerError("tag number is not minimally encoded (not DER)");
      if (groups === 3) throw new DerError("malformed DER: tag number too large");
      tagNumber = tagNumber * 128 + (next & 0x7f);
      if ((next & 0x80) === 0) break;
    }
    if (tagNumber < 0x1f) throw new DerError("tag number is not minimally encoded (not DER)");
  }
  // UNIVERSAL 0 ends an indefinite length (BER only); 15 and 37 upwards are reserved (X.680 §8.6).
  if (tagClass === tagClasses.universal && (tagNumber === 0 || tagNumber === 15 || tagNumber > 36)) {
    throw new DerError(`malformed DER: [UNIVERSAL ${tagNumber}] is not a type`);
  }
  // DER writes SEQUENCE and SET constructed, every other universal type primitive (X.690 §8.9.1, §10.2).
  if (tagClass === tagClasses.universal && constructed !== (tagNumber === 16 || tagNumber === 17)) {
    throw new DerError(`malformed DER: [UNIVERSAL ${tagNumber}] must be ${constructed ? "primitive" : "constructed"}`);
  }
  const lengthByte = byteAt(bytes, at++, limit, "length");
  let length = lengthByte;
  if (lengthByte === 0x80) throw new DerError("indefinite length is not allowed in DER");
  if (lengthByte > 0x80) {
    const octets = lengthByte & 0x7f;
    if (octets > 4) throw new DerError("malformed DER: length too large");
    length = 0;
    for (let index = 0; index < octets; index++) length = length * 256 + byteAt(bytes, at++, limit, "length");
    if (length < 0x80 || length < 256 ** (octets - 1)) throw new DerError("length is not minimally encoded (not DER)");
  }
  const contentStart = at;
  const end = contentStart + length;
  if (end > limit) throw new DerError(`malformed DER: the value needs ${end - limit} byte(s) more than there are`);
  const children: DerValue[] = [];
  if (constructed) {
    for (let next = contentStart; next < end; ) {
      const child = readValue(bytes, next, end, depth + 1, count);
      children.push(child.value);
      next = child.end;
    }
  }
  return {
    value: {
      tagClass,
      tagNumber,
      constructed,
      encoded: bytes.subarray(start, end),
      content: bytes.subarray(contentStart, end),
      children,
    },
    end,
  };
}

function byteAt(bytes: Uint8Array, index: number, limit: number, what: string): number {
  if (index >= limit) throw new DerError(`malformed DER: the value ends inside its ${what}`);
  return bytes[index]!;
}

/** The dotted form of an OBJECT IDENTIFIER's content (X.690 §8.19). */
export function objectIdentifier(content: Uint8Array): string {
  if (content.length === 0 || content[content.length - 1]! & 0x80) throw new DerError("malformed OBJECT IDENTIFIER");
  const arcs: number[] = [];
  let arc = 0;
  for (let index = 0; index < content.length; index++) {
    const byte = content[index]!;
    if (arc === 0 && byte === 0x80) throw new DerError("OBJECT IDENTIFIER arc is not minimally encoded (not DER)");
    arc = arc * 128 + (byte & 0x7f);
    if (arc > Number.MAX_SAFE_INTEGER / 128) throw new DerError("OBJECT IDENTIFIER arc too large");
    if ((byte & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(arc < 40 ? 0 : arc < 80 ? 1 : 2, arc < 80 ? arc % 40 : arc - 80);
      else arcs.push(arc);
      arc = 0;
    }
  }
  return arcs.join(".");
}
