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
  const run = () => {
    const mine = ++generation.current;
    load().then(
      (data) => mine === generation.current && setState({ data, loading: false }),
      (error: Error) => mine === generation.current && setState((previous) => ({ ...previous, error, loading: false })),
    );
  };
  useEffect(() => {
    setState({ loading: true });
    run();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const listener: Listener = (change) => {
      if (!relevant(change)) return;
      clearTimeout(timer);
      timer = setTimeout(run, debounceMs);
    };
    listeners.add(listener);
    const interval = everyMs === undefined ? undefined : setInterval(run, everyMs);
    return () => {
      listeners.delete(listener);
      clearTimeout(timer);
      clearInterval(interval);
    };
  }, deps);
  return { ...state, reload: run };
}
