/**
 * IP address and CIDR parsing for the policy engine. Addresses become 32-bit words
 * (IPv4: one word; IPv6: four big-endian words) written into a caller's scratch array, so
 * parsing a request's address on the hot path allocates nothing.
 *
 * IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are normalized to IPv4: a PEP that sees
 * a dual-stack socket must not slip past an IPv4 rule.
 */

/** 0 when the text is not an address, else the address family the words hold. */
export type IpFamily = 0 | 4 | 6;

const groups = new Uint16Array(8);

/** Parses a dotted-quad IPv4 address in `text[from, to)`; returns the address as an unsigned 32-bit number, or -1. */
function parseIpv4Range(text: string, from: number, to: number): number {
  let value = 0;
  let octets = 0;
  let i = from;
  while (i < to) {
    let octet = 0;
    let digits = 0;
    const start = i;
    while (i < to) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
      octet = octet * 10 + (c - 48);
      digits++;
      i++;
    }
    // No empty octets, no leading zeros (they read as octal in some stacks), no octet above 255.
    if (digits === 0 || digits > 3 || octet > 255 || (digits > 1 && text.charCodeAt(start) === 48)) return -1;
    value = value * 256 + octet;
    octets++;
    if (i === to) break;
    if (text.charCodeAt(i) !== 46 || octets === 4) return -1;
    i++;
    if (i === to) return -1;
  }
  return octets === 4 ? value : -1;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Parses an IPv6 address in `text[from, to)` into `groups`; returns false when it is not one. */
function parseIpv6Range(text: string, from: number, to: number): boolean {
  let count = 0;
  let gap = -1;
  let i = from;
  if (to - from < 2) return false;
  if (text.charCodeAt(i) === 58) {
    if (text.charCodeAt(i + 1) !== 58) return false;
    gap = 0;
    i += 2;
  }
  while (i < to) {
    let j = i;
    let value = 0;
    while (j < to && j - i < 5) {
      const h = hexValue(text.charCodeAt(j));
      if (h < 0) break;
      value = value * 16 + h;
      j++;
    }
    if (j < to && text.charCodeAt(j) === 46) {
      // An embedded IPv4 address takes the last two groups.
      if (count > 6) return false;
      const v4 = parseIpv4Range(text, i, to);
      if (v4 < 0) return false;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      i = to;
      break;
    }
    if (j === i || j - i > 4 || count === 8) return false;
    groups[count++] = value;
    if (j === to) {
      i = to;
      break;
    }
    if (text.charCodeAt(j) !== 58) return false;
    if (j + 1 < to && text.charCodeAt(j + 1) === 58) {
      if (gap >= 0) return false;
      gap = count;
      j += 2;
    } else {
      j += 1;
      if (j === to) return false;
    }
    i = j;
  }
  if (gap < 0) return count === 8;
  if (count > 7) return false;
  const tail = count - gap;
  for (let k = 0; k < tail; k++) groups[7 - k] = groups[count - 1 - k]!;
  for (let k = gap; k < 8 - tail; k++) groups[k] = 0;
  return true;
}

/**
 * Parses `text` (an IPv4 or IPv6 address, no zone id, no prefix) into `out`: IPv4 in
 * `out[0]`, IPv6 in `out[0..3]`. Returns the family, 0 when `text` is not an address.
 */
export function parseIpInto(text: string, out: Uint32Array): IpFamily {
  return parseRangeInto(text, 0, text.length, out);
}

function parseRangeInto(text: string, from: number, to: number, out: Uint32Array): IpFamily {
  if (text.indexOf(":", from) < 0 || text.indexOf(":", from) >= to) {
    const v4 = parseIpv4Range(text, from, to);
    if (v4 < 0) return 0;
    out[0] = v4;
    return 4;
  }
  if (!parseIpv6Range(text, from, to)) return 0;
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    out[0] = ((groups[6]! << 16) | groups[7]!) >>> 0;
    return 4;
  }
  for (let k = 0; k < 4; k++) out[k] = ((groups[2 * k]! << 16) | groups[2 * k + 1]!) >>> 0;
  return 6;
}

export interface Cidr {
  readonly family: 4 | 6;
  /** The network address: one word for IPv4, four for IPv6. */
  readonly words: Uint32Array;
  readonly prefix: number;
}

/** Why a CIDR is rejected, or the parsed CIDR. */
export type CidrParse = { ok: true; cidr: Cidr } | { ok: false; problem: string };

/** The mask of word `index` for a prefix length (32-bit words, big-endian). */
export function wordMask(prefix: number, index: number): number {
  const bits = Math.min(32, Math.max(0, prefix - index * 32));
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/**
 * Parses `a.b.c.d/n` or `x:y::/n`. Host bits must be zero (`10.1.2.3/8` is rejected: it
 * is usually a typo for a narrower range), and IPv4-mapped IPv6 ranges must be written as IPv4.
 */
export function parseCidr(text: string): CidrParse {
  const slash = text.indexOf("/");
  if (slash < 0) return { ok: false, problem: "a CIDR needs a prefix length, e.g. 10.0.0.0/8 or 2001:db8::/32" };
  const prefixText = text.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,2})$/.test(prefixText)) return { ok: false, problem: "the prefix length must be a number" };
  const prefix = Number(prefixText);
  const words = new Uint32Array(4);
  const isV6Text = text.lastIndexOf(":", slash) >= 0;
  const family = parseRangeInto(text, 0, slash, words);
  if (family === 0) return { ok: false, problem: "not an IPv4 or IPv6 address before the prefix" };
  if (family === 4 && isV6Text) return { ok: false, problem: "write IPv4-mapped ranges as IPv4 (10.0.0.0/8, not ::ffff:10.0.0.0/104)" };
  const maxPrefix = family === 4 ? 32 : 128;
  if (prefix > maxPrefix) return { ok: false, problem: `the prefix length is at most ${maxPrefix}` };
  const wordCount = family === 4 ? 1 : 4;
  for (let k = 0; k < wordCount; k++) {
    if ((words[k]! & ~wordMask(prefix, k)) !== 0) {
      return { ok: false, problem: "host bits are set: the address must be the network address of its prefix" };
    }
  }
  return { ok: true, cidr: { family, words: family === 4 ? words.slice(0, 1) : words, prefix } };
}
