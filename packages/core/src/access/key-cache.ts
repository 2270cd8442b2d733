/**
 * Stored API keys as this process last read them, for at most `keyCacheMs`. Enforcement
 * points long-poll in herds and every poll authenticates: without this, a thousand PEPs
 * re-polling after one commit cost the store a thousand consistent reads. Concurrent
 * lookups of one key share a single read; rotating or revoking a key forgets it here at
 * once, and other processes (other Lambda instances) see the change within `keyCacheMs`.
 */
import type { Ports } from "../ports.ts";

/** How long another process may still accept a key after it was rotated or revoked. */
export const keyCacheMs = 1000;

export type StoredKey = Record<string, unknown> | undefined;

interface Cached {
  readonly until: number;
  readonly item: Promise<StoredKey>;
}

interface KeyCache {
  readonly entries: Map<string, Cached>;
  /** Bumped by `forgetApiKey`: a read begun before a forget must not repopulate the cache. */
  readonly generations: Map<string, number>;
}

const caches = new WeakMap<object, KeyCache>();
const maxEntries = 10_000;

function cacheOf(ports: Pick<Ports, "db">): KeyCache {
  let cache = caches.get(ports.db);
  if (!cache) caches.set(ports.db, (cache = { entries: new Map(), generations: new Map() }));
  return cache;
}

/** The stored key record, read through the cache; unknown keys are never cached. */
export function cachedKey(ports: Pick<Ports, "db">, keyId: string, read: () => Promise<StoredKey>): Promise<StoredKey> {
  const cache = cacheOf(ports);
  const hit = cache.entries.get(keyId);
  if (hit && hit.until > Date.now()) return hit.item;
  if (cache.entries.size >= maxEntries) cache.entries.clear();
  const generation = cache.generations.get(keyId) ?? 0;
  const item = read();
  cache.entries.set(keyId, { until: Number.POSITIVE_INFINITY, item });
  const settle = (found: StoredKey) => {
    const current = cache.entries.get(keyId);
    if (current?.item !== item) return;
    if (found === undefined || (cache.generations.get(keyId) ?? 0) !== generation) cache.entries.delete(keyId);
    else cache.entries.set(keyId, { until: Date.now() + keyCacheMs, item });
  };
  item.then(settle, () => cache.entries.get(keyId)?.item === item && cache.entries.delete(keyId));
  return item;
}

/** Drops the key from this process's cache (after a rotation or revocation commits). */
export function forgetApiKey(ports: Pick<Ports, "db">, keyId: string): void {
  const cache = cacheOf(ports);
  cache.entries.delete(keyId);
  cache.generations.set(keyId, (cache.generations.get(keyId) ?? 0) + 1);
}
