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
 * Runs `load` now and again (at most every `debounceMs`) after every live change that
 * `relevant` accepts; returns its result, the error it threw, and a reload function.
 */
export function useLiveData<T>(
  load: () => Promise<T>,
  deps: unknown[],
  relevant: (change: LiveChange) => boolean = () => true,
  debounceMs = 150,
  /** Also read again this often: for what changes without a feed change (a device's anomalies, its timeline's records). */
  everyMs?: number,
) {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const generation = useRef(0);
  /** The newest read whose answer is shown: an answer of an older one, arriving later, is dropped. */
  const shown = useRef(0);
  const inFlight = useRef(0);
  const run = () => {
    const mine = ++generation.current;
    inFlight.current++;
    const settle = (apply: () => void) => {
      inFlight.current--;
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
    const listener: Listener = (change) => {
      if (!relevant(change)) return;
      clearTimeout(timer);
      timer = setTimeout(run, debounceMs);
    };
    listeners.add(listener);
    // A periodic read starts only when none is under way: a slow one is not piled on.
    const interval = everyMs === undefined ? undefined : setInterval(() => inFlight.current === 0 && run(), everyMs);
    return () => {
      listeners.delete(listener);
      clearTimeout(timer);
      clearInterval(interval);
    };
  }, deps);
  return { ...state, reload: run };
}
