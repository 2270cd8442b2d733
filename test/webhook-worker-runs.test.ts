/**
 * The webhook worker's runs (review 68): what a run's time budget, one subscription's failures and one attempt's
 * error may cost the other deliveries, and one run at a time in the local runtime.
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deliverDue, type Ports } from "@simroot/core";
import { backlog, subscription, withRuntime } from "./support/webhook-worker.ts";

/** A receiver answering `status` (204) after `delayMs` (never, when undefined), counting what arrives and what is in flight. */
function receiver(delayMs: number | undefined, initial = 204) {
  const state = { arrived: 0, inFlight: 0, maxInFlight: 0, status: initial, server: undefined as unknown as Server, url: "" };
  state.server = createServer((request, response) => {
    state.arrived += 1;
    state.inFlight += 1;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    request.resume();
    const done = () => (state.inFlight -= 1);
    response.on("close", done);
    if (delayMs !== undefined) setTimeout(() => response.writeHead(state.status).end(), delayMs);
  });
  return state;
}
const receivers = {
  fast: receiver(0),
  slow: receiver(800),
  lagging: receiver(300),
  hanging: receiver(undefined),
  down: receiver(0, 503),
};
beforeAll(async () => {
  for (const r of Object.values(receivers)) {
    await new Promise<void>((resolve) => r.server.listen(0, "127.0.0.1", resolve));
    r.url = `http://127.0.0.1:${(r.server.address() as { port: number }).port}/hook`;
  }
});
afterAll(async () => {
  for (const r of Object.values(receivers)) {
    r.server.closeAllConnections();
    await new Promise((resolve) => r.server.close(resolve));
  }
});

describe("the webhook worker's runs (review 68)", { timeout: 120_000 }, () => {
  it("starts no attempt its time budget would cut short: the delivery stays due, none of its retries spent", async () => {
    await withRuntime({ webhookWorkerMs: 0 }, async (runtime) => {
      // A healthy receiver that answers in 800 ms, reached with less than its 15 s wait left in the run (in AWS: the
      // last wave of a run that spent its time on a backlog). Attempted, it was cut short, recorded as failed and
      // retried later, though the receiver had taken it.
      const s = await subscription(runtime, "slow", receivers.slow.url);
      await backlog(runtime, s, 1);
      expect(await deliverDue(runtime.ports, { budgetMs: 1_500 })).toBe(0);
      expect(receivers.slow.arrived).toBe(0);
      const [waiting] = (await s.tenant.call("GET", `/v1/webhooks/${s.webhookId}/deliveries`)).json.items;
      expect(waiting).toMatchObject({ status: "pending", attempts: [] });
      // The next run, with the time, delivers it at its first attempt.
      expect(await deliverDue(runtime.ports, { budgetMs: 20_000 })).toBe(1);
      const [delivered] = (await s.tenant.call("GET", `/v1/webhooks/${s.webhookId}/deliveries`)).json.items;
      expect(delivered).toMatchObject({ status: "delivered" });
      expect(delivered.attempts).toHaveLength(1);
    });
  });

  it("a healthy receiver's backlog of due retries is delivered in one run, not 25 a minute", async () => {
    await withRuntime({ webhookWorkerMs: 0 }, async (runtime) => {
      // e.g. the receiver was down five minutes; it is back and answers at once: 60 retries are due.
      const s = await subscription(runtime, "recovered", receivers.fast.url);
      await backlog(runtime, s, 60);
      const before = receivers.fast.arrived;
      await deliverDue(runtime.ports, { budgetMs: 20_000 });
      // Capped at 25 a run, whether they failed or not, a recovered receiver's backlog drained at 25 a minute.
      expect(receivers.fast.arrived - before).toBe(60);
    });
  });

  it("one attempt that throws neither ends the run for everyone else nor leaves attempts running after it returns", async () => {
    await withRuntime({ webhookWorkerMs: 0 }, async (runtime) => {
      const a = await subscription(runtime, "throttled", receivers.lagging.url);
      const b = await subscription(runtime, "bystander", receivers.lagging.url);
      await backlog(runtime, a, 1);
      await backlog(runtime, b, 10);
      // One read of A's subscription record is refused (DynamoDB throttling): that attempt throws.
      const flaky = {
        send: (command: { constructor: { name: string }; input: { Key?: { pk?: string; sk?: string } } }) =>
          command.constructor.name === "GetCommand" && command.input.Key?.pk === `T#${a.tenantId}#webhook`
            ? Promise.reject(Object.assign(new Error("Rate of requests exceeds the allowed throughput"), { name: "ThrottlingException" }))
            : runtime.ports.db.send(command as never),
      } as unknown as Ports["db"];
      const outcome = await deliverDue({ ...runtime.ports, db: flaky }, { budgetMs: 20_000 }).then(
        () => "resolved",
        (error: Error) => `rejected: ${error.message}`,
      );
      const arrivedWhenItReturned = receivers.lagging.arrived;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const arrivedAfterItReturned = receivers.lagging.arrived - arrivedWhenItReturned;
      // It rejected at once, and B's attempts, already claimed (leased), were posted after it returned: in Lambda the
      // handler has answered and the sandbox is frozen mid-attempt; their leases (30 s) ran out before they settled, and
      // the next run sent them again.
      expect({ outcome, arrivedAfterItReturned }).toEqual({ outcome: "resolved", arrivedAfterItReturned: 0 });
    });
  });

  it("the local runtime starts no run while one is under way (16 attempts at once, not 16 more every tick)", async () => {
    await withRuntime({ webhookWorkerMs: 200 }, async (runtime) => {
      for (const name of ["wedged-1", "wedged-2", "wedged-3"]) {
        const s = await subscription(runtime, name, receivers.hanging.url);
        await backlog(runtime, s, 20);
      }
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const atOnce = receivers.hanging.maxInFlight;
      receivers.hanging.server.closeAllConnections();
      // A run started at every tick, each lasting up to its budget: runs piled up.
      expect(atOnce).toBeLessThanOrEqual(16);
    });
  });

  it("a failing receiver's backlog is read as far as a run attempts it, not whole at every run, and none of it is lost", async () => {
    await withRuntime({ webhookWorkerMs: 0 }, async (runtime) => {
      // e.g. a receiver down for an hour behind a busy subscription: 300 deliveries due, 25 failures a run.
      const s = await subscription(runtime, "down", receivers.down.url);
      await backlog(runtime, s, 300);
      let clock = Date.now();
      const reads = { items: 0 };
      const ports: Ports = {
        ...runtime.ports,
        now: () => new Date(clock),
        db: {
          send: async (command: { constructor: { name: string }; input: { IndexName?: string } }) => {
            const result = await runtime.ports.db.send(command as never);
            if (command.constructor.name === "QueryCommand" && command.input.IndexName === "byDue")
              reads.items += ((result as { Items?: unknown[] }).Items ?? []).length;
            return result;
          },
        } as unknown as Ports["db"],
      };
      const run = async () => {
        reads.items = 0;
        const attempted = await deliverDue(ports, { budgetMs: 20_000 });
        return { attempted, read: reads.items };
      };
      const first = await run();
      // 25 failures, and the attempts already under way when the 25th came back (16 at once).
      expect(first.attempted).toBeGreaterThanOrEqual(25);
      expect(first.attempted).toBeLessThan(25 + 16);
      // The next runs, a minute apart: 25 attempts each. Each read the 275 left, and so on: about N^2/50 item reads to
      // drain N (the index projects whole deliveries).
      const later = [];
      for (let n = 0; n < 3; n++) {
        clock += 60_000;
        later.push(await run());
      }
      for (const { attempted, read } of later) {
        expect(attempted).toBeGreaterThanOrEqual(25);
        // What the last run retried from the shards is due again (5 s later: up to 40), the queue gives a page of what the
        // run may attempt (25), and its marker (1).
        expect(read).toBeLessThanOrEqual(40 + 25 + 1);
      }
      // Back up: everything is delivered, each once, within a few runs (the retries' schedule stretches to hours).
      receivers.down.status = 204;
      const arrivedBefore = receivers.down.arrived;
      for (let n = 0; n < 4; n++) {
        clock += 3 * 3_600_000;
        await run();
      }
      const statuses: Record<string, number> = {};
      let cursor: string | undefined;
      do {
        const page = (await s.tenant.call("GET", `/v1/webhooks/${s.webhookId}/deliveries?limit=100${cursor ? `&cursor=${cursor}` : ""}`))
          .json;
        for (const item of page.items) statuses[item.status] = (statuses[item.status] ?? 0) + 1;
        cursor = page.next;
      } while (cursor);
      expect(statuses).toEqual({ delivered: 300 });
      expect(receivers.down.arrived - arrivedBefore).toBe(300);
      // The queue's marker is gone once its queue stayed empty past the index's lag: an idle run reads nothing.
      clock += 10 * 60_000;
      await run();
      expect(await run()).toEqual({ attempted: 0, read: 0 });
    });
  });

  it("a queue's marker outlives an index read that does not show the queue yet: nothing moved there is stranded", async () => {
    await withRuntime({ webhookWorkerMs: 0 }, async (runtime) => {
      receivers.down.status = 503;
      const s = await subscription(runtime, "down-lagging", receivers.down.url);
      await backlog(runtime, s, 60);
      let clock = Date.now();
      let lagging = false;
      const queue = `due#T#${s.tenantId}#W#${s.webhookId}`;
      const ports: Ports = {
        ...runtime.ports,
        now: () => new Date(clock),
        db: {
          // While `lagging`, the index shows nothing of the queue (written, not yet indexed: AWS's GSIs are eventually
          // consistent).
          send: async (command: { constructor: { name: string }; input: { ExpressionAttributeValues?: Record<string, unknown> } }) => {
            const result = await runtime.ports.db.send(command as never);
            const values = Object.values(command.input.ExpressionAttributeValues ?? {});
            if (lagging && command.constructor.name === "QueryCommand" && values.includes(queue)) return { ...result, Items: [] };
            return result;
          },
        } as unknown as Ports["db"],
      };
      await deliverDue(ports, { budgetMs: 20_000 });
      lagging = true;
      clock += 60_000;
      await deliverDue(ports, { budgetMs: 20_000 });
      // The index catches up; the receiver is back.
      lagging = false;
      receivers.down.status = 204;
      for (let n = 0; n < 3; n++) {
        clock += 3 * 3_600_000;
        await deliverDue(ports, { budgetMs: 20_000 });
      }
      const page = (await s.tenant.call("GET", `/v1/webhooks/${s.webhookId}/deliveries?limit=100`)).json;
      expect(page.items.filter((item: { status: string }) => item.status !== "delivered")).toEqual([]);
      expect(page.items).toHaveLength(60);
    });
  });
});
