/**
 * One tenant cannot take the ingestion backlog from the others (review 108). The bound is one for every tenant: a tenant
 * posting within its sources' rate limits filled it, and then every tenant's operator events were refused until it
 * drained. Past half the bound, a tenant whose events of the last minute would pass a quarter of it is refused (503,
 * Retry-After), and the others are still taken up to the bound. Counted across two instances that share nothing but
 * DynamoDB Local (each its own client and memory, as two Lambda instances), with the applier queue's depth as a port.
 */
import { randomBytes } from "node:crypto";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { admitIngest, type Ports, SimrootError } from "@simroot/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";

let one: TestRuntime;
let two: TestRuntime;
beforeAll(async () => {
  const tablePrefix = `share${randomBytes(4).toString("hex")}-`;
  [one, two] = await Promise.all([startTestRuntime({ tablePrefix }), startTestRuntime({ tablePrefix })]);
}, 60_000);
afterAll(async () => {
  await Promise.all([one?.stop(), two?.stop()]);
});

// A time early in one of the share's minute windows, the same on both instances (each test starts a minute later).
let clock = Date.UTC(2026, 11, 7, 12, 0, 0) + 3_000;
const depth = { pending: 0 };
/** An instance's ports with the applier queue at `depth.pending` of 100, and the clock at `clock`. */
const instance = (runtime: TestRuntime): Ports => ({
  ...runtime.ports,
  now: () => new Date(clock),
  backlog: { bound: 100, pending: async () => depth.pending },
});
/** Admits a request, and publishes it when taken (its events are counted then). */
const admit = (runtime: TestRuntime, tenantId: string, events: number) =>
  admitIngest(instance(runtime), events, tenantId).then(
    async (admission) => {
      await admission.published();
      return "taken" as const;
    },
    (error: unknown) => error as SimrootError,
  );
const tenant = () => `ten_${randomBytes(6).toString("hex")}`;

describe("a tenant's share of the ingestion backlog", () => {
  it("refuses the tenant that filled half the bound, on another instance too, and takes the others' events up to the bound", async () => {
    clock += 60_000;
    const [flooding, other] = [tenant(), tenant()];
    // Past a quarter of the bound, a tenant's events are counted: 20 of them, on instance one.
    depth.pending = 30;
    expect(await admit(one, flooding, 20)).toBe("taken");
    // Past half: 10 more would make 30 of the window, over a quarter of the bound (25). Instance two knows nothing of
    // them but what the store counted.
    depth.pending = 60;
    const refused = await admit(two, flooding, 10);
    expect(refused).toBeInstanceOf(SimrootError);
    expect(refused).toMatchObject({ code: "ingest.backlogged", detail: { status: 503 } });
    expect((refused as SimrootError).detail?.retryAfter).toBeGreaterThanOrEqual(1);
    expect((refused as SimrootError).message).toContain("share of 25");
    // Another tenant still gets in, on either instance, while the bound has room.
    expect(await admit(two, other, 10)).toBe("taken");
    expect(await admit(one, other, 10)).toBe("taken");
    // Its share is its own: past it, it is refused too.
    expect(await admit(one, other, 10)).toMatchObject({ code: "ingest.backlogged" });
    // What the refused request would have added is not counted: 5 more fit the first tenant's share, on instance two.
    expect(await admit(two, flooding, 5)).toBe("taken");
    // Instance one learns of them within a second (`flushMs`), and refuses the next.
    clock += 1_500;
    expect(await admit(one, flooding, 1)).toMatchObject({ code: "ingest.backlogged" });
  });

  it("counts the last minute across a window's edge, takes the tenant's events again as they leave it, and refuses everyone at the bound", async () => {
    clock += 60_000;
    const [flooding, other] = [tenant(), tenant()];
    depth.pending = 60;
    expect(await admit(one, flooding, 25)).toBe("taken");
    expect(await admit(two, flooding, 1)).toMatchObject({ code: "ingest.backlogged" });
    // Just past the window's edge, the last minute still holds nearly all of them (a fixed window gave a second share).
    clock += 60_000;
    const edge = await admit(two, flooding, 20);
    expect(edge).toMatchObject({ code: "ingest.backlogged" });
    expect((edge as SimrootError).detail?.retryAfter).toBeGreaterThanOrEqual(40);
    // Three quarters of the way into it, a fifth of them is left in the last minute: 20 more fit.
    clock += 45_000;
    expect(await admit(two, flooding, 20)).toBe("taken");
    // At the bound nobody gets in, whatever its share.
    depth.pending = 95;
    expect(await admit(one, other, 10)).toMatchObject({ code: "ingest.backlogged" });
  });

  it("tells a refused tenant when to come back: past its Retry-After the same request is taken (review 155)", async () => {
    clock += 60_000;
    const flooding = tenant();
    depth.pending = 60;
    expect(await admit(one, flooding, 25)).toBe("taken");
    // All of its share is in this window: it leaves the last minute only through the next one.
    const refused = (await admit(one, flooding, 1)) as SimrootError;
    expect(refused).toMatchObject({ code: "ingest.backlogged" });
    const retryAfter = Number(refused.detail?.retryAfter);
    clock += (retryAfter - 1) * 1000;
    expect(await admit(two, flooding, 1)).toMatchObject({ code: "ingest.backlogged" });
    clock += 1000;
    expect(await admit(two, flooding, 1)).toBe("taken");
  });

  it("writes no count while the backlog is under a quarter of its bound", async () => {
    clock += 60_000;
    const quiet = tenant();
    const counter = async () =>
      (
        await one.ports.db.send(
          new GetCommand({
            TableName: one.ports.tables.control,
            Key: { pk: `rate#ingest-share:${quiet}`, sk: String(Math.floor(clock / 60_000) * 60_000) },
            ConsistentRead: true,
          }),
        )
      ).Item;
    depth.pending = 20;
    for (let n = 0; n < 5; n++) expect(await admit(one, quiet, 1)).toBe("taken");
    expect(await counter()).toBeUndefined();
    // Past a quarter, the same tenant's events are counted in the store.
    depth.pending = 30;
    expect(await admit(one, quiet, 3)).toBe("taken");
    expect((await counter())?.count).toBe(3);
  });
});
