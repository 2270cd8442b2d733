/**
 * A feed signer for tests: signs snapshot pages, deltas and idle heads with a generated
 * Ed25519 key through the same wire helpers the control plane uses, on a clock the test
 * moves. `raw` lets adversarial tests build heads the control plane would never sign.
 */
import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import {
  contentHash,
  cursorHash,
  headBytes,
  maxHeadLifetimeSeconds,
  type FeedEntry,
  type FeedHead,
  type FeedResponse,
  type SignedHead,
} from "@simroot/core/feed/wire";

export type EntryBody = Omit<FeedEntry, "version">;

export const device = (id: string, state = "active", labels: Record<string, string> = { fleet: "meters" }): EntryBody => ({
  kind: "device",
  key: id,
  value: { id, state, labels, imsi: "208011234567890", revision: 1 },
});
export const binding = (address: string, deviceId: string | null, bearer = "cellular"): EntryBody => ({
  kind: "binding",
  key: address,
  value: deviceId === null ? null : { deviceId, address, bearer, apn: "iot.acme" },
});
export const rule = (id: string, fields: Record<string, unknown> = {}): EntryBody => ({
  kind: "policy",
  key: id,
  value: {
    id,
    name: `rule ${id}`,
    selector: { matchLabels: { fleet: "meters" } },
    destinations: [{ fqdn: "ingest.example.com", ports: [8883], protocol: "tcp" }],
    effect: "allow",
    ...fields,
  },
});
export const settings = (failMode: "open" | "closed" = "closed"): EntryBody => ({
  kind: "settings",
  key: "enforcement",
  value: { quarantineDestinations: [], failMode },
});

export const start = Date.parse("2026-03-01T08:00:00Z");

export function testFeed(tenantId = "ten_acme", keys = generateKeyPairSync("ed25519")) {
  let clock = start;
  const signHead = (head: FeedHead, privateKey: KeyObject = keys.privateKey): SignedHead => ({
    head,
    signature: sign(null, headBytes(head), privateKey).toString("base64"),
    keyId: "ed25519:test",
  });
  const head = (fields: Partial<FeedHead> & Pick<FeedHead, "kind" | "version">, entries: readonly FeedEntry[]): FeedHead => ({
    tenantId,
    epoch: 0,
    since: 0,
    page: 0,
    last: true,
    contentHash: contentHash(entries),
    issuedAt: new Date(clock).toISOString(),
    expiresAt: new Date(clock + maxHeadLifetimeSeconds * 1000).toISOString(),
    ...fields,
  });
  const at = (version: number, bodies: readonly EntryBody[]): FeedEntry[] => bodies.map((body) => ({ ...body, version }));
  return {
    tenantId,
    publicKey: keys.publicKey,
    privateKey: keys.privateKey,
    now: () => clock,
    advance: (ms: number) => (clock += ms),
    signHead,
    head,
    /** One snapshot page at `version`; a page after the first names the cursor it answers (`cursor`). */
    snapshot(
      version: number,
      bodies: readonly EntryBody[],
      page: { page?: number; last?: boolean; next?: string; cursor?: string; epoch?: number } = {},
    ): FeedResponse {
      const entries = at(version, bodies);
      const chain = { ...(page.cursor ? { cursor: cursorHash(page.cursor) } : {}), ...(page.next ? { next: cursorHash(page.next) } : {}) };
      const fields = {
        kind: "snapshot" as const,
        version,
        page: page.page ?? 0,
        last: page.last ?? true,
        epoch: page.epoch ?? 0,
        ...chain,
      };
      const signed = signHead(head(fields, entries));
      return { signed, entries, ...(page.next ? { next: page.next } : {}) };
    },
    /** The deltas from `since` to `version`, every entry at `version` unless given with its own. */
    delta(since: number, version: number, bodies: readonly (EntryBody | FeedEntry)[], last = true): FeedResponse {
      const entries = bodies.map((body) => ("version" in body ? body : { ...body, version }));
      return { signed: signHead(head({ kind: "delta", since, version, last }, entries)), entries };
    },
    /** The header value of an idle (304) poll at `version`. */
    idle(version: number): string {
      const signed = signHead(head({ kind: "delta", since: version, version }, []));
      return Buffer.from(JSON.stringify(signed)).toString("base64");
    },
  };
}

export type TestFeed = ReturnType<typeof testFeed>;
