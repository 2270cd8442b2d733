/**
 * What pages need of live changes: a counter that moves with every committed change (pages
 * reload their data when it moves, debounced) and the newest change, for the "updated" badge.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import type { LiveChange } from "./live.ts";

type Listener = (change: LiveChange) => void;
const listeners = new Set<Listener>();

export function bumpLive(change: LiveChange): void {
  for (const listener of listeners) listener(change);
}

/** Calls `listener` with every live change until the returned function is called. */
export function onLive(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * The longest a change waits for the read that covers it, however many relevant changes follow (or `spacingMs` when
 * longer). Each change restarted the wait before the next read: changes coming more often than `debounceMs` (a device or
 * its source reporting every 100 ms) put it off for as long as they kept coming, and a device's open page never showed
 * that it was revoked (review 139).
 */
export const maxWaitMs = 1_000;

/**
 * Runs `load` now and again after the live changes that `relevant` accepts: `debounceMs` after the last of a burst, but
 * no later than `maxWaitMs` after its first; returns its result, the error it threw, and a reload function.
 *
 * Given `spacingMs`, reads other than the first and `reload`'s begin at least that far apart, and a change seen while
 * one is under way is read once it ends, not by another read beside it. A device's timeline is a read of up to 100 requests,
 * and a device whose changes kept coming (a flapping session, its source posting) began one per change, each beside
 * the others: an open page spent its key's rate limit, and the operator's own action on the device was refused 429
 * (review 139).
 */
export function useLiveData<T>(
  load: () => Promise<T>,
  deps: unknown[],
  relevant: (change: LiveChange) => boolean = () => true,
  debounceMs = 150,
  /** Also read again this often: for what changes without a feed change (a device's anomalies, its timeline's records). */
  everyMs?: number,
  /** The least time between the beginnings of two reads, but for the first and `reload`'s. */
  spacingMs = 0,
) {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const generation = useRef(0);
  /** The newest read whose answer is shown: an answer of an older one, arriving later, is dropped. */
  const shown = useRef(0);
  const inFlight = useRef(0);
  /** When the last read began (ms since the epoch). */
  const began = useRef(0);
  /** Called when no read is under way any more. */
  const idle = useRef<() => void>();
  const run = () => {
    const mine = ++generation.current;
    inFlight.current++;
    began.current = Date.now();
    const settle = (apply: () => void) => {
      inFlight.current--;
      if (inFlight.current === 0) idle.current?.();
      // Shown unless a newer read's answer already is: a read that takes longer than the time between reads still
      // shows (review 120: only the last read started was shown, and a timeline read over 10 s never was).
      if (mine <= shown.current) return;
      shown.current = mine;
      apply();
    };
    load().then(
      (data) => settle(() => setState({ data, loading: false })),
      (error: Error) => settle(() => setState((previous) => ({ ...previous, error, loading: false }))),
    );
  };
  useEffect(() => {
    // Reads begun for other deps (another device's page) are never shown here.
    shown.current = generation.current;
    setState({ loading: true });
    run();
    let timer: ReturnType<typeof setTimeout> | undefined;
    /** A change is waiting for the read under way to end. */
    let waiting = false;
    const spaced = () => Date.now() - began.current >= spacingMs;
    /** When the first change not yet covered by a read arrived (undefined: none is waiting). */
    let since: number | undefined;
    const readAgain = () => {
      const now = Date.now();
      since ??= now;
      clearTimeout(timer);
      const due = Math.min(now + debounceMs, since + Math.max(maxWaitMs, spacingMs));
      timer = setTimeout(
        () => {
          if (spacingMs > 0 && inFlight.current > 0) waiting = true;
          else if (!spaced()) readAgain();
          else {
            since = undefined;
            run();
          }
        },
        Math.max(due - now, began.current + spacingMs - now),
      );
    };
    idle.current = () => {
      if (!waiting) return;
      waiting = false;
      readAgain();
    };
    const listener: Listener = (change) => {
      if (relevant(change)) readAgain();
    };
    listeners.add(listener);
    // A periodic read starts only when none is under way (a slow one is not piled on), nor began within `spacingMs`.
    const interval = everyMs === undefined ? undefined : setInterval(() => inFlight.current === 0 && spaced() && run(), everyMs);
    return () => {
      listeners.delete(listener);
      idle.current = undefined;
      clearTimeout(timer);
      clearInterval(interval);
    };
  }, deps);
  return { ...state, reload: run };
}
