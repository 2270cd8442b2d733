import { describe, expect, it } from "vitest";
import { noticeTrigger, type NoticeSource } from "./push.ts";

/** A notice source driven by the test: what a hub or broker would deliver. */
function manualSource() {
  let handlers: Parameters<NoticeSource>[1] | undefined;
  const topics: string[] = [];
  const source: NoticeSource = (tenantId, given) => {
    topics.push(tenantId);
    handlers = given;
    given.onConnected();
    return { close: () => (handlers = undefined) };
  };
  return {
    source,
    topics,
    send: (payload: unknown) => handlers?.onMessage(JSON.stringify(payload)),
    reconnect: () => handlers?.onConnected(),
  };
}

const settled = async (promise: Promise<void>) =>
  Promise.race([promise.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 30))]);

describe("the push trigger", () => {
  it("wakes a PEP when its tenant's head passes its version, and only then", async () => {
    const { source, topics, send } = manualSource();
    const trigger = noticeTrigger(source);
    const signal = new AbortController().signal;
    const waiting = trigger.wait("ten_a", 5, 60_000, signal);
    expect(topics).toEqual(["ten_a"]);
    send({ tenantId: "ten_a", version: 5 });
    send({ tenantId: "ten_b", version: 9 });
    send("garbage");
    expect(await settled(waiting)).toBe(false);
    send({ tenantId: "ten_a", version: 6 });
    expect(await settled(waiting)).toBe(true);
    // A notice that arrived during the poll that followed is not lost.
    expect(await settled(trigger.wait("ten_a", 5, 60_000, signal))).toBe(true);
    expect(await settled(trigger.wait("ten_a", 6, 60_000, signal))).toBe(false);
    trigger.close();
  });

  it("polls after a reconnection (notices may have been lost), at the idle interval, and on abort", async () => {
    const { source, reconnect } = manualSource();
    const trigger = noticeTrigger(source);
    const stop = new AbortController();
    const first = trigger.wait("ten_a", 1, 60_000, stop.signal);
    reconnect();
    expect(await settled(first)).toBe(true);
    expect(await settled(trigger.wait("ten_a", 1, 10, stop.signal))).toBe(true);
    const aborted = trigger.wait("ten_a", 1, 60_000, stop.signal);
    stop.abort();
    expect(await settled(aborted)).toBe(true);
    trigger.close();
  });
});
