import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { device, rule, testFeed } from "./feed.test-support.ts";
import { addSnapshotPage, verifyIdleHead, verifyResponse, type FeedFailure, type VerifyContext } from "./verify.ts";

const feed = testFeed();
const ctx = (version: number, overrides: Partial<VerifyContext> = {}): VerifyContext => ({
  publicKeys: [feed.publicKey],
  tenantId: feed.tenantId,
  version,
  epoch: 0,
  now: feed.now(),
  ...overrides,
});

const codeOf = (run: () => unknown): FeedFailure | undefined => {
  try {
    run();
    return undefined;
  } catch (error) {
    return (error as { code: FeedFailure }).code;
  }
};

describe("feed verification", () => {
  it("accepts a signed snapshot, then deltas that continue from the version held", () => {
    const snapshot = verifyResponse(feed.snapshot(4, [device("dev_a"), rule("r1")]), ctx(0), "snapshot");
    expect(snapshot.head).toMatchObject({ kind: "snapshot", version: 4 });
    expect(snapshot.entries).toHaveLength(2);
    const delta = verifyResponse(
      feed.delta(4, 6, [
        { ...device("dev_a", "suspended"), version: 5 },
        { ...rule("r1"), version: 6 },
      ]),
      ctx(4),
      "delta",
    );
    expect(delta.head).toMatchObject({ kind: "delta", since: 4, version: 6 });
    // A key rotation: the new key is pinned beside the old one.
    const rotated = testFeed(feed.tenantId);
    expect(
      verifyResponse(rotated.delta(6, 7, [device("dev_b")]), ctx(6, { publicKeys: [feed.publicKey, rotated.publicKey] }), "delta").head
        .version,
    ).toBe(7);
  });

  it("refuses a response narrowed to another selector, or narrowed when the PEP follows the whole tenant", () => {
    const entries = [{ ...device("dev_a"), version: 5 }];
    const narrowed = (scope?: string) => ({
      signed: feed.signHead(feed.head({ kind: "delta", since: 4, version: 5, ...(scope ? { scope } : {}) }, entries)),
      entries,
    });
    expect(verifyResponse(narrowed("site=north"), ctx(4, { scope: "site=north" }), "delta").head.version).toBe(5);
    expect(codeOf(() => verifyResponse(narrowed("site=south"), ctx(4, { scope: "site=north" }), "delta"))).toBe("feed.wrong_scope");
    expect(codeOf(() => verifyResponse(narrowed("site=north"), ctx(4), "delta"))).toBe("feed.wrong_scope");
    expect(codeOf(() => verifyResponse(narrowed(), ctx(4, { scope: "site=north" }), "delta"))).toBe("feed.wrong_scope");
  });

  it("refuses a forged signature: another key, or a head changed after signing", () => {
    const forger = testFeed(feed.tenantId, generateKeyPairSync("ed25519"));
    expect(codeOf(() => verifyResponse(forger.delta(4, 5, [device("dev_a", "active", { fleet: "admins" })]), ctx(4), "delta"))).toBe(
      "feed.bad_signature",
    );
    const genuine = feed.delta(4, 5, [device("dev_a")]);
    const bumped = {
      ...genuine,
      signed: { ...genuine.signed, head: { ...genuine.signed.head, expiresAt: new Date(feed.now() + 7_000).toISOString() } },
    };
    expect(codeOf(() => verifyResponse(bumped, ctx(4), "delta"))).toBe("feed.bad_signature");
    expect(
      codeOf(() => verifyResponse({ ...genuine, signed: { ...genuine.signed, signature: "not base64 at all!" } }, ctx(4), "delta")),
    ).toBe("feed.bad_signature");
  });

  it("refuses a replayed old head: deltas or a snapshot below the version held (rollback)", () => {
    const oldDelta = feed.delta(2, 3, [device("dev_a", "active")]);
    expect(codeOf(() => verifyResponse(oldDelta, ctx(5), "delta"))).toBe("feed.rollback");
    const oldSnapshot = feed.snapshot(3, [device("dev_a", "active")]);
    expect(codeOf(() => verifyResponse(oldSnapshot, ctx(5), "snapshot"))).toBe("feed.rollback");
    // A snapshot at the version held is a legitimate re-sync.
    expect(verifyResponse(feed.snapshot(5, [device("dev_a")]), ctx(5), "snapshot").head.version).toBe(5);
  });

  it("refuses skipped and reordered deltas (gap)", () => {
    expect(codeOf(() => verifyResponse(feed.delta(6, 7, [device("dev_a")]), ctx(5), "delta"))).toBe("feed.gap");
    // The last delta replayed: it ends at the version held but starts before it.
    expect(codeOf(() => verifyResponse(feed.delta(4, 5, [device("dev_a")]), ctx(5), "delta"))).toBe("feed.gap");
    const reordered = feed.delta(5, 8, [
      { ...device("dev_a", "revoked"), version: 7 },
      { ...device("dev_a", "active"), version: 6 },
    ]);
    expect(codeOf(() => verifyResponse(reordered, ctx(5), "delta"))).toBe("feed.gap");
    expect(codeOf(() => verifyResponse(feed.delta(5, 6, [{ ...device("dev_a"), version: 9 }]), ctx(5), "delta"))).toBe("feed.gap");
    expect(codeOf(() => verifyResponse(feed.delta(5, 6, [{ ...device("dev_a"), version: 5 }]), ctx(5), "delta"))).toBe("feed.gap");
  });

  it("refuses an expired head, and one claiming a lifetime beyond the maximum (freeze)", () => {
    const response = feed.delta(5, 6, [device("dev_a")]);
    expect(codeOf(() => verifyResponse(response, ctx(5, { now: feed.now() + 8_000 }), "delta"))).toBe("feed.expired");
    expect(verifyResponse(response, ctx(5, { now: feed.now() + 7_999 }), "delta").head.version).toBe(6);
    const entries = response.entries;
    const longLived = feed.signHead(
      feed.head({ kind: "delta", since: 5, version: 6, expiresAt: new Date(feed.now() + 9_000).toISOString() }, entries),
    );
    expect(codeOf(() => verifyResponse({ signed: longLived, entries }, ctx(5), "delta"))).toBe("feed.expired");
  });

  it("refuses entries that do not match their head", () => {
    const snapshot = feed.snapshot(4, [device("dev_a"), rule("r1")]);
    const dropped = { ...snapshot, entries: snapshot.entries.slice(0, 1) };
    expect(codeOf(() => verifyResponse(dropped, ctx(0), "snapshot"))).toBe("feed.content_mismatch");
    const altered = {
      ...snapshot,
      entries: [
        { ...snapshot.entries[0]!, value: { ...snapshot.entries[0]!.value, state: "active", labels: { fleet: "admins" } } },
        snapshot.entries[1]!,
      ],
    };
    expect(codeOf(() => verifyResponse(altered, ctx(0), "snapshot"))).toBe("feed.content_mismatch");
    // Entries at another version than the snapshot's, even if hashed and signed.
    const entries = [{ ...device("dev_a"), version: 3 }];
    const mixed = { signed: feed.signHead(feed.head({ kind: "snapshot", version: 4 }, entries)), entries };
    expect(codeOf(() => verifyResponse(mixed, ctx(0), "snapshot"))).toBe("feed.content_mismatch");
  });

  it("refuses a head for another tenant, even validly signed", () => {
    const other = testFeed("ten_other", { publicKey: feed.publicKey, privateKey: feed.privateKey });
    expect(codeOf(() => verifyResponse(other.snapshot(9, [device("dev_x")]), ctx(0), "snapshot"))).toBe("feed.wrong_tenant");
  });

  it("refuses what is not a feed response at all", () => {
    expect(codeOf(() => verifyResponse({ hello: "world" }, ctx(0), "snapshot"))).toBe("feed.malformed");
    expect(codeOf(() => verifyResponse(null, ctx(0), "snapshot"))).toBe("feed.malformed");
  });

  it("accepts an idle head only as a delta from the version held to itself", () => {
    expect(verifyIdleHead(feed.idle(5), ctx(5)).head.version).toBe(5);
    expect(codeOf(() => verifyIdleHead(feed.idle(4), ctx(5)))).toBe("feed.rollback");
    expect(codeOf(() => verifyIdleHead(feed.idle(6), ctx(5)))).toBe("feed.gap");
    expect(codeOf(() => verifyIdleHead("%%%", ctx(5)))).toBe("feed.malformed");
    const sneaky = Buffer.from(
      JSON.stringify(feed.signHead(feed.head({ kind: "delta", since: 5, version: 5 }, [{ ...device("dev_a"), version: 5 }]))),
    ).toString("base64");
    expect(codeOf(() => verifyIdleHead(sneaky, ctx(5)))).toBe("feed.content_mismatch");
  });

  it("assembles a snapshot only from every page of one version, in order", () => {
    const page0 = verifyResponse(feed.snapshot(7, [device("dev_a")], { page: 0, last: false, next: "c1" }), ctx(0), "snapshot");
    const page1 = verifyResponse(
      feed.snapshot(7, [device("dev_b")], { page: 1, last: false, next: "c2", cursor: "c1" }),
      ctx(0),
      "snapshot",
    );
    const page2 = verifyResponse(feed.snapshot(7, [device("dev_c")], { page: 2, last: true, cursor: "c2" }), ctx(0), "snapshot");
    const first = addSnapshotPage(undefined, page0);
    expect(first.complete).toBe(false);
    if (first.complete) return;
    expect(codeOf(() => addSnapshotPage(first.assembly, page2))).toBe("feed.gap");
    expect(codeOf(() => addSnapshotPage(undefined, page1))).toBe("feed.gap");
    const otherVersion = verifyResponse(feed.snapshot(8, [device("dev_b")], { page: 1, last: true, cursor: "c1" }), ctx(0), "snapshot");
    expect(codeOf(() => addSnapshotPage(first.assembly, otherVersion))).toBe("feed.gap");
    const second = addSnapshotPage(first.assembly, page1);
    if (second.complete) throw new Error("not complete yet");
    const done = addSnapshotPage(second.assembly, page2);
    expect(done.complete && done.entries.map((entry) => entry.key)).toEqual(["dev_a", "dev_b", "dev_c"]);
  });

  it("refuses a snapshot page whose cursor chain does not continue the pages before it (a forged cursor)", () => {
    const page0 = verifyResponse(feed.snapshot(7, [device("dev_a")], { page: 0, last: false, next: "c1" }), ctx(0), "snapshot");
    const first = addSnapshotPage(undefined, page0);
    if (first.complete) throw new Error("not complete yet");
    // The control plane answered a cursor the PEP never got from page 0 (its version, phase or position chosen by someone on the path).
    const forged = verifyResponse(feed.snapshot(7, [], { page: 1, last: true, cursor: "forged" }), ctx(0), "snapshot");
    expect(codeOf(() => addSnapshotPage(first.assembly, forged))).toBe("feed.gap");
    // A first page answering a cursor: not the start of a snapshot.
    expect(
      codeOf(() => addSnapshotPage(undefined, verifyResponse(feed.snapshot(7, [], { page: 0, cursor: "c0" }), ctx(0), "snapshot"))),
    ).toBe("feed.gap");
    // A `next` swapped on the path no longer matches the head.
    const genuine = feed.snapshot(7, [device("dev_a")], { page: 0, last: false, next: "c1" });
    expect(codeOf(() => verifyResponse({ ...genuine, next: "c9" }, ctx(0), "snapshot"))).toBe("feed.content_mismatch");
    expect(codeOf(() => verifyResponse({ signed: genuine.signed, entries: genuine.entries }, ctx(0), "snapshot"))).toBe(
      "feed.content_mismatch",
    );
  });

  it("refuses a snapshot page in answer to a delta poll, and deltas in answer to a snapshot request", () => {
    expect(codeOf(() => verifyResponse(feed.snapshot(5, [device("dev_a")]), ctx(5), "delta"))).toBe("feed.wrong_kind");
    expect(codeOf(() => verifyResponse(feed.delta(0, 5, [device("dev_a")]), ctx(0), "snapshot"))).toBe("feed.wrong_kind");
  });

  it("takes a lower version only from a snapshot of a newer epoch; never an older epoch", () => {
    const restored = feed.snapshot(3, [device("dev_a")], { epoch: 2 });
    expect(codeOf(() => verifyResponse(feed.snapshot(3, [device("dev_a")], { epoch: 1 }), ctx(5, { epoch: 1 }), "snapshot"))).toBe(
      "feed.rollback",
    );
    expect(verifyResponse(restored, ctx(5, { epoch: 1 }), "snapshot").head).toMatchObject({ epoch: 2, version: 3 });
    expect(codeOf(() => verifyResponse(feed.snapshot(9, [device("dev_a")], { epoch: 1 }), ctx(3, { epoch: 2 }), "snapshot"))).toBe(
      "feed.rollback",
    );
    // Deltas of a newer epoch: the PEP must take that epoch's snapshot first.
    const newer = { signed: feed.signHead(feed.head({ kind: "delta", since: 5, version: 6, epoch: 2 }, [])), entries: [] };
    expect(codeOf(() => verifyResponse(newer, ctx(5, { epoch: 1 }), "delta"))).toBe("feed.epoch");
  });

  it("tolerates clock skew up to the configured bound, never beyond the maximum", () => {
    const response = feed.delta(5, 6, [device("dev_a")]);
    expect(verifyResponse(response, ctx(5, { now: feed.now() + 8_500, skewMs: 1_000 }), "delta").head.version).toBe(6);
    expect(codeOf(() => verifyResponse(response, ctx(5, { now: feed.now() + 9_000, skewMs: 1_000 }), "delta"))).toBe("feed.expired");
    // A tolerance configured beyond 2 s counts as 2 s.
    expect(codeOf(() => verifyResponse(response, ctx(5, { now: feed.now() + 10_000, skewMs: 60_000 }), "delta"))).toBe("feed.expired");
    // A head issued ahead of this clock beyond the tolerance would stay fresh longer than its lifetime.
    expect(codeOf(() => verifyResponse(response, ctx(5, { now: feed.now() - 1_500, skewMs: 1_000 }), "delta"))).toBe("feed.not_yet_valid");
    expect(verifyResponse(response, ctx(5, { now: feed.now() - 500, skewMs: 1_000 }), "delta").head.version).toBe(6);
  });
});
