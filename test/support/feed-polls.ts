/**
 * A fetch for a PEP's FeedSync that records the `wait` of each feed request and lets a test wait for the next poll
 * to be answered. A PEP on the push channel polls when a notice wakes it, and otherwise before its signed head
 * expires (half its 8 s lifetime): a change learned well within 4 s of an answered poll came by the notice.
 */
export function recordingFetch() {
  const waits: string[] = [];
  let waiting: (() => void)[] = [];
  const recorded: typeof fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.pathname === "/v1/feed") waits.push(url.searchParams.get("wait") ?? "");
    try {
      return await fetch(input, init);
    } finally {
      const answered = waiting;
      waiting = [];
      for (const done of answered) done();
    }
  };
  return {
    fetch: recorded,
    /** The `wait` of every feed request so far (`""` when it named none). */
    waits,
    /** Resolves when the next request is answered. */
    nextAnswer: () => new Promise<void>((resolve) => waiting.push(resolve)),
  };
}

/** How soon after an answered poll a PEP on the push channel must learn a change for the notice to have told it. */
export const byNoticeMs = 2_500;
