/** Set when the console is built: `SIMROOT_CONSOLE_IDLE_MINUTES`, or 15 (packages/console/src/build.ts). */
declare const SIMROOT_IDLE_MINUTES: number;

/** How long a tab stays signed in without a key pressed or the pointer used. */
export const idleMinutes = SIMROOT_IDLE_MINUTES;

/** What the user does at the keyboard or with the pointer: nothing the page does on its own (a live change) counts. */
const activity = ["keydown", "pointerdown", "pointermove", "wheel", "touchstart"] as const;

/**
 * Calls `then` once no key has been pressed nor the pointer used for `minutes` (review 139: a tab kept its key for as
 * long as it stayed open, and a console left on a shared desk acted with the operator's key for anyone, hours later).
 * Judged on the wall clock: a timer late by a machine's sleep signs out when it fires, and activity after the period,
 * before it fired, does not bring the key back. Returns the function that stops watching.
 */
export function whenIdle(minutes: number, then: () => void): () => void {
  const idleMs = minutes * 60_000;
  let last = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    clearTimeout(timer);
    for (const type of activity) removeEventListener(type, active, true);
  };
  const expired = () => {
    if (Date.now() - last < idleMs) return false;
    stop();
    then();
    return true;
  };
  const check = () => {
    if (!expired()) timer = setTimeout(check, last + idleMs - Date.now());
  };
  function active() {
    if (!expired()) last = Date.now();
  }
  for (const type of activity) addEventListener(type, active, { capture: true, passive: true });
  timer = setTimeout(check, idleMs);
  return stop;
}
