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
    // A notice that arrives during the poll that followed (no one waits) is not lost.
    send({ tenantId: "ten_a", version: 7 });
    expect(await settled(trigger.wait("ten_a", 6, 60_000, signal))).toBe(true);
    expect(await settled(trigger.wait("ten_a", 7, 60_000, signal))).toBe(false);
    trigger.close();
  });

  it("hands over the change the newest notice carried, once, and only to a PEP it is news to", async () => {
    const { source, send } = manualSource();
    const trigger = noticeTrigger(source);
    const signal = new AbortController().signal;
    await settled(trigger.wait("ten_a", 5, 10, signal));
    send({ tenantId: "ten_a", version: 6, response: { signed: "six" } });
    send({ tenantId: "ten_a", version: 7, response: { signed: "seven" } });
    expect(trigger.take!("ten_a", 7)).toBeUndefined();
    send({ tenantId: "ten_a", version: 8, response: { signed: "eight" } });
    expect(trigger.take!("ten_b", 5)).toBeUndefined();
    send({ tenantId: "ten_a", version: 9, response: { signed: "nine" } });
    expect(trigger.take!("ten_a", 5)).toEqual({ signed: "nine" });
    expect(trigger.take!("ten_a", 5)).toBeUndefined();
    // A bare notice (its change too large to carry) leaves nothing to take: the PEP polls.
    send({ tenantId: "ten_a", version: 10 });
    expect(trigger.take!("ten_a", 9)).toBeUndefined();
    trigger.close();
  });

  it("is not wedged by a notice no poll reaches: a forged one, or one of the feed before a restore brought the versions back (review 85)", async () => {
    const { source, send } = manualSource();
    const trigger = noticeTrigger(source);
    const signal = new AbortController().signal;
    const waiting = trigger.wait("ten_a", 5, 60_000, signal);
    send({ tenantId: "ten_a", version: 1_000_000 });
    expect(await settled(waiting)).toBe(true);
    // The poll it caused found the head at 5: waiting again at 5 must wait, not poll again at once forever (a loop of
    // polls without pause, each answered 304).
    const paused = trigger.wait("ten_a", 5, 60_000, signal);
    expect(await settled(paused)).toBe(false);
    // It is polled for again after a pause (a read of the head that lagged the notice is caught up with), not never.
    expect(await Promise.race([paused.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 1_000))])).toBe(true);
    // A later genuine notice still wakes the PEP at once, though its version is below the one that went before.
    const again = trigger.wait("ten_a", 5, 60_000, signal);
    send({ tenantId: "ten_a", version: 6, response: { signed: "six" } });
    expect(await settled(again)).toBe(true);
    expect(trigger.take!("ten_a", 5)).toEqual({ signed: "six" });
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
