/**
 * Compiled destinations and the request target they are matched against. A destination
 * names a host (exact or `*.suffix`) or a network, plus ports and a protocol.
 */
import { normalizeHost, wildcardSuffix } from "./host.ts";
import type { Destination } from "./model.ts";
import { parseCidr, parseIpInto, wordMask, type IpFamily } from "./net.ts";

/** Protocol codes: a request is 1 (tcp) or 2 (udp); a destination may also be 0 (any). */
export const protocolCode = { any: 0, tcp: 1, udp: 2 } as const;

export interface CompiledDestination {
  /** Exact host, normalized; null for wildcards and networks. */
  readonly host: string | null;
  /** For `*.example.com`: `example.com`. */
  readonly suffix: string | null;
  /** 0 for host destinations. */
  readonly family: IpFamily;
  readonly network: Uint32Array;
  readonly mask: Uint32Array;
  readonly prefix: number;
  /** Inclusive [from, to] pairs, merged and sorted; null for any port. */
  readonly ports: Int32Array | null;
  readonly protocol: 0 | 1 | 2;
}

/** Sorted, merged inclusive port ranges as a flat array of pairs. */
function compilePorts(ports: Destination["ports"]): Int32Array | null {
  if (!ports) return null;
  const ranges = ports.map((p) => (typeof p === "number" ? [p, p] : [p.from, p.to])).sort((a, b) => a[0]! - b[0]!);
  const merged: number[][] = [];
  for (const [from, to] of ranges as [number, number][]) {
    const last = merged.at(-1);
    if (last && from <= last[1]! + 1) last[1] = Math.max(last[1]!, to);
    else merged.push([from, to]);
  }
  return Int32Array.from(merged.flat());
}

export function compileDestination(destination: Destination): CompiledDestination {
  const ports = compilePorts(destination.ports);
  const protocol = protocolCode[destination.protocol];
  // A host stored as an address (before rules refused one: review 126) is that address, as a request naming it is.
  const literal = destination.fqdn === undefined ? 0 : parseIpInto(normalizeHost(destination.fqdn), scratch);
  if (literal !== 0) return addressDestination(literal, scratch, ports, protocol);
  if (destination.fqdn !== undefined) {
    const suffix = wildcardSuffix(destination.fqdn);
    return {
      host: suffix === null ? normalizeHost(destination.fqdn) : null,
      suffix,
      family: 0,
      network: new Uint32Array(4),
      mask: new Uint32Array(4),
      prefix: 0,
      ports,
      protocol,
    };
  }
  const parsed = parseCidr(destination.cidr ?? "");
  if (!parsed.ok) throw new Error(`invalid cidr ${destination.cidr}: ${parsed.problem}`);
  const { family, words, prefix } = parsed.cidr;
  const network = new Uint32Array(4);
  const mask = new Uint32Array(4);
  for (let k = 0; k < words.length; k++) {
    network[k] = words[k]!;
    mask[k] = wordMask(prefix, k);
  }
  return { host: null, suffix: null, family, network, mask, prefix, ports, protocol };
}

const scratch = new Uint32Array(4);

/** One address as a destination: its network of one (a /32 or a /128). */
function addressDestination(
  family: IpFamily,
  address: Uint32Array,
  ports: CompiledDestination["ports"],
  protocol: CompiledDestination["protocol"],
): CompiledDestination {
  const words = family === 4 ? 1 : 4;
  const prefix = family === 4 ? 32 : 128;
  const network = new Uint32Array(4);
  const mask = new Uint32Array(4);
  for (let k = 0; k < words; k++) {
    network[k] = address[k]!;
    mask[k] = wordMask(prefix, k);
  }
  return { host: null, suffix: null, family, network, mask, prefix, ports, protocol };
}

export function portAllowed(ports: Int32Array | null, port: number): boolean {
  if (ports === null) return true;
  for (let i = 0; i < ports.length; i += 2) {
    if (port < ports[i]!) return false;
    if (port <= ports[i + 1]!) return true;
  }
  return false;
}

/** The destination of one request, parsed once and reused (scratch, not retained). */
export class Target {
  host: string | null = null;
  family: IpFamily = 0;
  readonly address = new Uint32Array(4);

  set(destination: { readonly ip?: string; readonly fqdn?: string }): this {
    this.host = destination.fqdn === undefined ? null : normalizeHost(destination.fqdn);
    this.family = destination.ip === undefined ? 0 : parseIpInto(destination.ip, this.address);
    // A "host" that is an address literal is the address, as a PEP reads a Host header that names one (review 122: asked
    // by name, what-if decided `10.0.0.1` by host rules while the PEP decided it by networks).
    if (this.family === 0 && this.host !== null) {
      this.family = parseIpInto(this.host, this.address);
      if (this.family !== 0) this.host = null;
    }
    return this;
  }
}

/** True when `target` falls under `destination`'s host or network (ports and protocol aside). */
export function addressMatches(destination: CompiledDestination, target: Target): boolean {
  if (destination.family === 0) {
    const host = target.host;
    if (host === null) return false;
    if (destination.host !== null) return host === destination.host;
    const suffix = destination.suffix!;
    return host.length > suffix.length + 1 && host.endsWith(suffix) && host.charCodeAt(host.length - suffix.length - 1) === 46;
  }
  if (destination.family !== target.family) return false;
  const words = destination.family === 4 ? 1 : 4;
  for (let k = 0; k < words; k++) {
    if (((target.address[k]! ^ destination.network[k]!) & destination.mask[k]!) !== 0) return false;
  }
  return true;
}

/** Host or network, port and protocol: the linear matcher used for grants and quarantine. */
export function destinationMatches(destination: CompiledDestination, target: Target, port: number, protocol: 1 | 2): boolean {
  return (
    (destination.protocol === 0 || destination.protocol === protocol) &&
    portAllowed(destination.ports, port) &&
    addressMatches(destination, target)
  );
}
