/**
 * One spelling per address, shared by the control plane and the PEP (which imports it): a binding written as
 * `2001:DB8::0:1` is found for a request from `2001:db8::1` (RFC 5952, as WHATWG URL writes it), and an IPv4-mapped
 * `::ffff:10.0.0.1` (a dual-stack socket's) is `10.0.0.1`. Two spellings of one address were two bindings of two
 * devices in the store, and one key at every PEP.
 */
export function canonicalIp(text: string): string {
  const address = text.trim();
  if (!address.includes(":")) return address;
  let canonical: string;
  try {
    canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return address.toLowerCase();
  }
  // IPv4-mapped: the URL form is ::ffff:hhhh:hhhh.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (!mapped) return canonical;
  const high = Number.parseInt(mapped[1]!, 16);
  const low = Number.parseInt(mapped[2]!, 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}
