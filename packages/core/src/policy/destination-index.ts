/**
 * An index from request targets to the destinations (of many rules) that may match them:
 * exact hosts in a map, wildcard suffixes in a map, networks in one multibit prefix trie
 * per address family. A lookup does a few hash probes and one trie walk, and hands each
 * candidate list to a sink, allocating nothing.
 *
 * The trie consumes an address a byte at a time (stride 8: at most 4 steps for IPv4, 16 for
 * IPv6). A prefix ending inside a byte is expanded over the slots it covers in that byte
 * (a /26 under 10.1.2.0/24 fills 64 of the 256 slots of the 10.1.2 node); /0 sits apart.
 */
import type { CompiledDestination, Target } from "./destination.ts";

export interface IndexEntry {
  /** What the destination belongs to (a rule's position in its policy set). */
  readonly ref: number;
  readonly destination: CompiledDestination;
}

/** Receives candidate lists; each entry's host or network matches the target already. */
export interface CandidateSink {
  visit(entries: readonly IndexEntry[]): void;
}

interface StrideNode {
  /** By the next byte of the address. */
  readonly children: (StrideNode | null)[];
  /** Entries whose prefix ends within this byte, by the byte values it covers. */
  readonly lists: (IndexEntry[] | null)[];
}

interface Trie {
  readonly root: StrideNode;
  /** Entries with prefix length 0. */
  readonly everything: IndexEntry[];
  /** Bytes in an address: 4 or 16. */
  readonly bytes: number;
}

const newNode = (): StrideNode => ({
  children: new Array<StrideNode | null>(256).fill(null),
  lists: new Array<IndexEntry[] | null>(256).fill(null),
});
const newTrie = (bytes: number): Trie => ({ root: newNode(), everything: [], bytes });
const byteAt = (address: Uint32Array, index: number) => (address[index >>> 2]! >>> (24 - 8 * (index & 3))) & 255;
const maxHostLength = 254;
const hashMask = 0x3fffffff;

interface WildcardBucket {
  readonly suffix: string;
  readonly entries: IndexEntry[];
}

/** Hash of `text[from..]` read from its last character back, as `lookup` computes it. */
function suffixHash(text: string, from: number): number {
  let hash = 0;
  for (let i = text.length - 1; i >= from; i--) hash = (Math.imul(hash, 31) + text.charCodeAt(i)) | 0;
  return hash & hashMask;
}

export class DestinationIndex {
  readonly #exact = new Map<string, IndexEntry[]>();
  /** Wildcard suffixes by `suffixHash`; a bucket may hold colliding suffixes. */
  readonly #wildcard = new Map<number, WildcardBucket[]>();
  /** wildcardLengths[n] is 1 when some wildcard suffix has n characters: other dots need no probe. */
  readonly #wildcardLengths = new Uint8Array(maxHostLength + 1);
  readonly #v4 = newTrie(4);
  readonly #v6 = newTrie(16);
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(ref: number, destination: CompiledDestination): void {
    const entry: IndexEntry = { ref, destination };
    this.#size++;
    if (destination.host !== null) {
      push(this.#exact, destination.host, entry);
      return;
    }
    if (destination.suffix !== null) {
      const suffix = destination.suffix;
      this.#wildcardLengths[Math.min(suffix.length, maxHostLength)] = 1;
      const hash = suffixHash(suffix, 0);
      const buckets = this.#wildcard.get(hash) ?? [];
      const bucket = buckets.find((b) => b.suffix === suffix);
      if (bucket) bucket.entries.push(entry);
      else buckets.push({ suffix, entries: [entry] });
      this.#wildcard.set(hash, buckets);
      return;
    }
    const trie = destination.family === 4 ? this.#v4 : this.#v6;
    const prefix = destination.prefix;
    if (prefix === 0) {
      trie.everything.push(entry);
      return;
    }
    const last = (prefix - 1) >>> 3; // the byte the prefix ends in
    let node = trie.root;
    for (let level = 0; level < last; level++) {
      const byte = byteAt(destination.network, level);
      node = node.children[byte] ??= newNode();
    }
    const first = byteAt(destination.network, last);
    const span = 1 << (8 * (last + 1) - prefix);
    for (let slot = first; slot < first + span; slot++) (node.lists[slot] ??= []).push(entry);
  }

  /** Visits every list of entries whose host or network matches `target`. */
  lookup(target: Target, sink: CandidateSink): void {
    const host = target.host;
    if (host !== null) {
      const exact = this.#exact.get(host);
      if (exact !== undefined) sink.visit(exact);
      if (this.#wildcard.size > 0) {
        // `*.example.com` is filed under `example.com`: walking the host from its end, the
        // hash of the suffix after each dot is at hand, so `a.b.example.com` finds it and
        // `example.com` itself (no dot before it) does not. No substring is made.
        let hash = 0;
        for (let i = host.length - 1; i > 0; i--) {
          const c = host.charCodeAt(i);
          if (c === 46) {
            const length = host.length - i - 1;
            if (length <= maxHostLength && this.#wildcardLengths[length] === 1) {
              const buckets = this.#wildcard.get(hash & hashMask);
              if (buckets !== undefined) {
                for (let b = 0; b < buckets.length; b++) {
                  const bucket = buckets[b]!;
                  if (bucket.suffix.length === length && host.endsWith(bucket.suffix)) sink.visit(bucket.entries);
                }
              }
            }
          }
          hash = (Math.imul(hash, 31) + c) | 0;
        }
      }
    }
    if (target.family === 0) return;
    const trie = target.family === 4 ? this.#v4 : this.#v6;
    if (trie.everything.length > 0) sink.visit(trie.everything);
    const address = target.address;
    let node: StrideNode | null = trie.root;
    for (let level = 0; node !== null && level < trie.bytes; level++) {
      const byte = byteAt(address, level);
      // Every node has all 256 slots: the index is in range.
      const list = node.lists[byte] as IndexEntry[] | null;
      if (list !== null) sink.visit(list);
      node = node.children[byte] as StrideNode | null;
    }
  }
}

function push(map: Map<string, IndexEntry[]>, key: string, entry: IndexEntry): void {
  const list = map.get(key);
  if (list) list.push(entry);
  else map.set(key, [entry]);
}
