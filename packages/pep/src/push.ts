/**
 * The push side of the sync: instead of holding a long poll open on the control plane (one
 * Lambda instance per waiting PEP in AWS), the PEP subscribes to its tenant's notices
 * ("the head moved to version V", see @simroot/core/feed/notifier) and polls, briefly, only
 * when one says its view is behind, or every `idlePollSeconds` to refresh the signed head.
 * A notice is a hint, never authority: what is applied is a verified signed response. A notice
 * may carry one (the change since the version before, signed as a poll's answer is): the sync
 * verifies it exactly as a polled one and applies it without a request, else it polls.
 */
import { parseHeadMoved } from "@simroot/core/feed/notifier";

export interface FeedTrigger {
  /**
   * Resolves once the tenant's head may be past `version` (a notice said so, or the channel
   * was interrupted and may have lost one), or after `maxWaitMs`, or when `signal` aborts.
   * Resolves at once when a notice past `version` already arrived.
   */
  wait(tenantId: string, version: number, maxWaitMs: number, signal: AbortSignal): Promise<void>;
  /**
   * The signed delta the newest notice carried, unverified, when that notice is past `version` (then forgotten: the
   * sync verifies it and polls when it does not continue the view).
   */
  take?(tenantId: string, version: number): unknown;
  /** Ends the subscription. */
  close(): void;
}

/** Where notices come from: a subscription to one tenant's topic. */
export type NoticeSource = (
  tenantId: string,
  /** `onMessage`: a payload as received: text, or bytes (an MQTT message: JSON, or JSON gzipped when it is large). */
  handlers: { onMessage: (payload: string | Uint8Array) => void; onConnected: () => void },
) => { close(): void };

/** The first pause before polling again for a notice the last poll did not reach; it doubles up to the idle interval. */
const unreachedPauseMs = 250;

export function noticeTrigger(source: NoticeSource): FeedTrigger {
  let subscribed: { tenantId: string; close(): void } | undefined;
  /**
   * The newest version a notice named that no wait has yet found the view at (then forgotten), and how many polls were
   * made for it. A notice is a hint: one no poll reaches (forged, or of the feed before a restore brought the versions
   * back, review 85) made every wait resolve at once, a loop of polls without pause, and hid every later notice below it.
   */
  let pending: number | undefined;
  let polledFor = 0;
  /** The signed delta the newest notice carried. */
  let carried: { tenantId: string; version: number; response: unknown } | undefined;
  const waiters = new Set<{ version: number; done: () => void }>();
  const wakeAll = (past?: number) => {
    let woken = 0;
    for (const waiter of [...waiters]) {
      if (past !== undefined && past <= waiter.version) continue;
      waiter.done();
      woken++;
    }
    return woken;
  };
  const subscribe = (tenantId: string) => {
    if (subscribed?.tenantId === tenantId) return;
    subscribed?.close();
    pending = undefined;
    polledFor = 0;
    carried = undefined;
    const subscription = source(tenantId, {
      onMessage(payload) {
        const notice = parseHeadMoved(payload);
        if (notice?.tenantId !== tenantId) return;
        if (pending === undefined || notice.version > pending) {
          pending = notice.version;
          polledFor = 0;
        }
        if (carried === undefined || notice.version >= carried.version)
          carried = notice.response === undefined ? undefined : { tenantId, version: notice.version, response: notice.response };
        // Every notice past a waiter's version wakes it, whatever came before (a version below an earlier one included).
        if (wakeAll(notice.version) > 0 && notice.version === pending) polledFor = Math.max(polledFor, 1);
      },
      // Subscribed: notices sent before (while down, or before the first subscription) were lost; whoever waits polls once.
      onConnected: () => wakeAll(),
    });
    subscribed = { tenantId, close: () => subscription.close() };
  };
  return {
    wait(tenantId, version, maxWaitMs, signal) {
      subscribe(tenantId);
      if (signal.aborted) return Promise.resolve();
      let waitMs = maxWaitMs;
      if (pending !== undefined && pending <= version) {
        pending = undefined;
        polledFor = 0;
      } else if (pending !== undefined) {
        // Polled for at once the first time; a notice the polls since did not reach, less and less often (a lagging
        // read of the head is caught within a few hundred ms), never less often than the idle poll.
        const pause = polledFor === 0 ? 0 : Math.min(maxWaitMs, unreachedPauseMs * 2 ** Math.min(polledFor - 1, 16));
        polledFor++;
        if (pause === 0) return Promise.resolve();
        waitMs = pause;
      }
      return new Promise<void>((resolve) => {
        const waiter = {
          version,
          done: () => {
            waiters.delete(waiter);
            clearTimeout(timer);
            signal.removeEventListener("abort", waiter.done);
            resolve();
          },
        };
        const timer = setTimeout(waiter.done, waitMs);
        signal.addEventListener("abort", waiter.done);
        waiters.add(waiter);
      });
    },
    take(tenantId, version) {
      const found = carried;
      carried = undefined;
      return found?.tenantId === tenantId && found.version > version ? found.response : undefined;
    },
    close() {
      subscribed?.close();
      subscribed = undefined;
      wakeAll();
    },
  };
}
