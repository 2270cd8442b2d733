import type { KeyObject } from "node:crypto";
import { FeedSync, PepState, type FeedTrigger } from "@simroot/pep";
import { expect } from "vitest";

/**
 * A fetch for a PEP's FeedSync that records the `wait` of each feed request and lets a test wait for the next poll
 * to be answered. A PEP on the push channel polls when a notice wakes it, and otherwise before its signed head
 * expires (half its 8 s lifetime): a change learned well within 4 s of an answered poll came by the notice.
 */
export function recordingFetch() {
  const waits: string[] = [];
  const feed = { answered: 0, inFlight: 0 };
  let waiting: (() => void)[] = [];
  const recorded: typeof fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const isFeed = url.pathname === "/v1/feed";
    if (isFeed) {
      waits.push(url.searchParams.get("wait") ?? "");
      feed.inFlight++;
    }
    try {
      return await fetch(input, init);
    } finally {
      if (isFeed) {
        feed.inFlight--;
        feed.answered++;
      }
      const answered = waiting;
      waiting = [];
      for (const done of answered) done();
    }
  };
  return {
    fetch: recorded,
    /** The `wait` of every feed request so far (`""` when it named none). */
    waits,
    /** Feed requests answered (or failed) so far. */
    get answered() {
      return feed.answered;
    },
    /** Feed requests made and not answered yet. */
    get inFlight() {
      return feed.inFlight;
    },
    /** Resolves when the next request is answered. */
    nextAnswer: () => new Promise<void>((resolve) => waiting.push(resolve)),
  };
}

/**
 * `trigger` with its timeout put past any test: the sync's idle poll (its head's refresh, every 4 s) never comes, so
 * the PEP polls only when the channel wakes it (a notice that does not carry its change, or a (re)connection). A change
 * it learns with no request made came by the notice, however slow the machine (the idle poll cannot race the notice).
 * Its held head still expires 8 s after its last poll: a notice's signed head renews it.
 */
export function noticesOnly(trigger: FeedTrigger): FeedTrigger {
  return {
    wait: (tenantId, version, _maxWaitMs, signal) => trigger.wait(tenantId, version, 10 * 60_000, signal),
    ...(trigger.take ? { take: (tenantId: string, version: number) => trigger.take!(tenantId, version) } : {}),
    close: () => trigger.close(),
  };
}

/** How soon after an answered poll a PEP on the push channel must learn a change for the notice to have told it. */
export const byNoticeMs = 2_500;

/**
 * A PEP on the push channel, as the tests run it: its view, a FeedSync that polls `url` only when `trigger` wakes it
 * (its idle poll a minute away) through a recording fetch, started once the view holds the tenant's snapshot.
 */
export async function pushedPep(options: { url: string; apiKey: string; publicKey: KeyObject; tenantId: string; trigger: FeedTrigger }) {
  const state = new PepState(options.tenantId);
  const polls = recordingFetch();
  const sync = new FeedSync({
    url: options.url,
    apiKey: options.apiKey,
    publicKeys: [options.publicKey],
    state,
    trigger: options.trigger,
    idlePollSeconds: 60,
    fetch: polls.fetch,
  });
  sync.start();
  try {
    await expect.poll(() => state.version, { timeout: 10_000 }).toBeGreaterThan(0);
  } catch (error) {
    await sync.stop();
    throw error;
  }
  return { state, sync, polls };
}
