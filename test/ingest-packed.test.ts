/**
 * A request's reported facts travel the bus as one entry (core ingest/reported.ts) and reach the applier as one
 * invocation, through the local bus and the very handler modules Lambda runs, and through EventBridge's PutEvents on
 * the wire. What a rule routes by its content still travels alone; a packed fact that fails goes back on the bus alone
 * (its entry's other facts are not applied again), and nothing is lost; an entry cannot carry another tenant's fact.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  asyncApiDocument,
  factsReportedType,
  matchesPattern,
  maxFactsPerEntry,
  maxPackedBytes,
  packReported,
  registerDevice,
  listTimeline,
  rules,
  type BusEnvelope,
  type DomainEvent,
  type Ports,
} from "@simroot/core";
import { park } from "@simroot/core/ingest/parked";
import { LocalBus, type BusTarget } from "@simroot/local/bus/local-bus";
import { loadRuleTargets } from "@simroot/local/targets";
import { attachedIp, ingestedFacts } from "./support/ingested-facts.ts";
import { putOnTheWire } from "./support/loopback-eventbridge.ts";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime?.stop());

const { fact, attach, tenantWithDevices: withDevices } = ingestedFacts("src_packed", "20801", (n) => `10.77.${n >> 8}.${n & 255}`);
const tenantWithDevices = (name: string, count: number) => withDevices(runtime.ports, name, count);

interface Observed {
  readonly bus: LocalBus;
  readonly ports: Ports;
  /** What each rule's handler was invoked with, in order. */
  readonly invoked: Record<string, BusEnvelope[]>;
  readonly metrics: Record<string, number>;
}

/**
 * The rules' handler modules over `runtime`'s store, on a bus of their own whose invocations are recorded. `fail`
 * makes the store fail a call the first time it is asked (an internal error, after the SDK's retries), by the command and
 * its input. Not a throttle: one of those is tried again in place (review 145).
 */
async function observed(
  fail?: (name: string, input: unknown) => boolean,
  publishFails?: (events: readonly DomainEvent[]) => boolean,
): Promise<Observed> {
  const invoked: Record<string, BusEnvelope[]> = {};
  const metrics: Record<string, number> = {};
  const refusedOnce = new Set<string>();
  const db = Object.create(runtime.ports.db) as Ports["db"];
  db.send = (async (command: { constructor: { name: string }; input: unknown }) => {
    const key = `${command.constructor.name}|${JSON.stringify(command.input)}`;
    if (fail?.(command.constructor.name, command.input) && !refusedOnce.has(key)) {
      refusedOnce.add(key);
      throw Object.assign(new Error("Internal server error"), {
        name: "InternalServerError",
        $metadata: { httpStatusCode: 500 },
      });
    }
    return runtime.ports.db.send(command as never);
  }) as never;
  const holder: { bus?: LocalBus } = {};
  const ports: Ports = {
    ...runtime.ports,
    db,
    publisher: {
      publish: async (events, options) => {
        // `publishFails`: the bus refuses a publish once, as an invocation that ends before it publishes.
        if (publishFails?.(events)) throw new Error("the bus refused the publish");
        return holder.bus!.publish(events, options);
      },
    },
    metrics: { add: (name: string, value: number) => void (metrics[name] = (metrics[name] ?? 0) + value) } as Ports["metrics"],
  };
  const targets = await loadRuleTargets(ports);
  const recorded = Object.fromEntries(
    Object.entries(targets).map(([name, target]) => [
      name,
      {
        get pattern() {
          return target.pattern;
        },
        invoke: async (envelope: BusEnvelope) => {
          (invoked[name] ??= []).push(envelope);
          await target.invoke(envelope);
        },
      } satisfies BusTarget,
    ]),
  );
  holder.bus = await LocalBus.open({ targets: recorded, retry: { baseDelayMs: 5, maxDelayMs: 20, maxAttempts: 4 } });
  return { bus: holder.bus, ports, invoked, metrics };
}

/** The store calls that read a device's item (a key naming it): for `observed` to fail once. */
const deviceRead = (deviceId: string) => (name: string, input: unknown) =>
  name === "GetCommand" && JSON.stringify(input).includes(deviceId) && JSON.stringify(input).includes('"sk"');

/** An eUICC's fallback to another profile, reported in request `requestId`: a switch the detectors judge. */
const fallbackSwitch = (tenantId: string, requestId: string, eid: string) =>
  fact(tenantId, requestId, "profile.enabled", { eid }, { eid, iccid: "8944500102198304826", seqNumber: 4, cause: "fallback" });

describe("reported facts on the bus", () => {
  it("reach the applier as one invocation per request (at most 25 facts an entry), and every fact is applied", async () => {
    const { tenantId, ids } = await tenantWithDevices("packed", 30);
    const { bus, ports, invoked, metrics } = await observed();
    await bus.publish(ids.map((_, n) => attach(tenantId, "req_webhook_1", n)));
    await bus.drained();

    const entries = invoked.operatorEvents ?? [];
    expect(entries.map((entry) => entry["detail-type"])).toEqual([factsReportedType, factsReportedType]);
    expect(entries.map((entry) => (entry.detail.data.facts as unknown[]).length)).toEqual([maxFactsPerEntry, 30 - maxFactsPerEntry]);
    expect(entries.every((entry) => entry.source === "simroot.ingest")).toBe(true);
    // As /asyncapi.json documents the entry.
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    ajv.addSchema(asyncApiDocument(), "asyncapi");
    const documented = ajv.getSchema("asyncapi#/components/messages/factsReported/payload")!;
    for (const entry of entries) expect(documented(entry.detail), JSON.stringify(documented.errors)).toBe(true);
    expect(metrics.FactsApplied).toBe(30);
    const ips = await Promise.all(ids.map((id) => attachedIp(ports, tenantId, id)));
    expect(ips).toEqual(ids.map((_, n) => `10.77.${n >> 8}.${n & 255}`));
    expect(bus.deadLetters()).toEqual([]);
    await bus.close();
  });

  it("keeps apart the facts of different requests, and sends alone a fact another rule routes by its content", async () => {
    const { tenantId } = await tenantWithDevices("packed-routing", 4);
    const { bus, invoked } = await observed();
    const eid = "89049032123451234512345678901235";
    const switched = fallbackSwitch(tenantId, "req_a", eid);
    await bus.publish([
      attach(tenantId, "req_a", 0),
      attach(tenantId, "req_a", 1),
      switched,
      attach(tenantId, "req_a", 2),
      attach(tenantId, "req_b", 3),
    ]);
    await bus.drained();
    // A run of one fact stays a fact: only two facts of one request, with nothing between, share an entry.
    expect((invoked.operatorEvents ?? []).map((entry) => entry["detail-type"])).toEqual([
      factsReportedType,
      "profile.enabled",
      "sim.attached",
      "sim.attached",
    ]);
    expect((invoked.profileSwitches ?? []).map((entry) => entry.detail.id)).toEqual([switched.id]);
    await bus.close();
  });

  it("judges a parked profile switch once its device registers, though the reconciler's first run ends before it publishes (review 145)", async () => {
    // The reconciler applies the parked facts itself, unparking each, and sent the switch to the detectors only at the
    // end: a run that ended before (a publish refused, the function's timeout) left it applied and unparked, and the
    // run the bus retried found nothing parked to send: the fallback was never judged.
    const { tenantId } = await tenantWithDevices("packed-parked-switch", 0);
    const eid = "89049032123451234512345678901235";
    let refused = false;
    // The bus refuses the first publish of the parked switch (nothing else here publishes a reported fact).
    const { bus, ports } = await observed(undefined, (events) => {
      if (refused || !events.some((event) => event.origin === "ingest" && event.type === "profile.enabled")) return false;
      return (refused = true);
    });
    const switched = fallbackSwitch(tenantId, "req_switch", eid);
    const ctx = { tenantId, actor: "system:test", requestId: "req_register" };
    const registered = await registerDevice(ports, ctx, { eid, iccids: ["8944500102198304826"] });
    const device = registered.value;
    // Parked before the device was registered, and replayed by this bus's reconciler alone (the runtime's, which
    // its outbox relay hands the registration, ran before: nothing was parked).
    await runtime.settled();
    await park(ports, switched, "no device matches");
    await bus.publish(registered.events);
    await bus.drained();
    // The anomaly's audit record is the runtime's (its outbox relay and audit writer).
    await runtime.settled();
    expect(refused).toBe(true);
    const timeline = (await listTimeline(ports, ctx, { subject: device.id, limit: 100 })).items as {
      type: string;
      data: { kind?: string };
    }[];
    expect(timeline.filter((entry) => entry.type === "anomaly.detected").map((entry) => entry.data.kind)).toEqual(["profile-switch"]);
    expect(bus.deadLetters()).toEqual([]);
    await bus.close();
  });

  it("sends a fact that failed back on the bus alone: the entry's other facts are not applied again", async () => {
    const { tenantId, ids } = await tenantWithDevices("packed-retry", 3);
    // The store fails the first read of the second device's item: its fact fails in the entry.
    const { bus, ports, invoked, metrics } = await observed(deviceRead(ids[1]!));
    const facts = ids.map((_, n) => attach(tenantId, "req_retry", n));
    await bus.publish(facts);
    await bus.drained();
    // The entry, then the failed fact as itself (its own id: a retry or a dead letter names what ingestion accepted).
    expect((invoked.operatorEvents ?? []).map((entry) => [entry["detail-type"], entry.detail.id === facts[1]!.id])).toEqual([
      [factsReportedType, false],
      ["sim.attached", true],
    ]);
    // Each fact settled once: none of the entry's applied facts came back, even as a duplicate.
    expect(metrics).toMatchObject({ FactsApplied: 3, FactsSettled: 3, FactsRequeued: 1 });
    expect(await Promise.all(ids.map((id) => attachedIp(ports, tenantId, id)))).toEqual(["10.77.0.0", "10.77.0.1", "10.77.0.2"]);
    expect(bus.deadLetters()).toEqual([]);
    await bus.close();
  });

  it("dead-letters a malformed packed fact under its own id, alone, and applies the others", async () => {
    const { tenantId, ids } = await tenantWithDevices("packed-mixed", 2);
    const { bus, ports, invoked } = await observed(deviceRead(ids[1]!));
    const good = attach(tenantId, "req_mixed", 0);
    const malformed = { ...good, id: `${good.id}m`, data: { ...good.data, event: { ...good.data.event, occurredAt: "yesterday" } } };
    const failing = attach(tenantId, "req_mixed", 1);
    await bus.publish([malformed, good, failing]);
    await bus.drained();
    expect(
      (invoked.operatorEvents ?? [])
        .map((entry) => entry.detail.id)
        .slice(1)
        .sort(),
    ).toEqual([malformed.id, failing.id].sort());
    expect(await Promise.all(ids.map((id) => attachedIp(ports, tenantId, id)))).toEqual(["10.77.0.0", "10.77.0.1"]);
    // What an operator sees at /v1/dead-letters, and redrives: the fact ingestion accepted, not the entry.
    expect(bus.deadLetters().map((letter) => [letter.eventId, letter.envelope["detail-type"]])).toEqual([[malformed.id, "sim.attached"]]);
    expect(bus.deadLetters()[0]!.reason).toMatch(/^rejected: .*not a normalized fact/);
    await bus.close();
  });

  it("refuses an entry that packs a fact of another tenant, or an entry, and applies none of its facts", async () => {
    const mine = await tenantWithDevices("packed-mine", 1);
    const theirs = await tenantWithDevices("packed-theirs", 1);
    const { bus, ports } = await observed();
    const own = attach(mine.tenantId, "req_forged", 0);
    const foreign = attach(theirs.tenantId, "req_forged", 0);
    // Made by hand: ingestion never packs two tenants' facts; a forged entry on the bus must not get this far either.
    const forged: DomainEvent = {
      ...packReported([own, { ...own, id: `${own.id}x` }])[0]!,
      data: { sourceId: "src_packed", facts: [own, foreign] },
    };
    // And an entry packing an entry (whose facts are the tenant's own).
    const nested: DomainEvent = {
      ...forged,
      id: `${forged.id}n`,
      data: { sourceId: "src_packed", facts: [own, { ...forged, data: { sourceId: "src_packed", facts: [own, own] } }] },
    };
    await bus.publish([forged, nested], { alone: true });
    await bus.drained();
    expect(bus.deadLetters().map((letter) => [letter.rule, letter.eventId, letter.reason.replace(/^rejected: Entry \S+ /, "")])).toEqual([
      ["operatorEvents", forged.id, "packs a fact of another tenant or source"],
      ["operatorEvents", nested.id, "packs an entry"],
    ]);
    expect(await attachedIp(ports, theirs.tenantId, theirs.ids[0]!)).toBeUndefined();
    expect(await attachedIp(ports, mine.tenantId, mine.ids[0]!)).toBeUndefined();
    await bus.close();
  });
});

describe("reported facts through EventBridge", () => {
  it("are put as packed entries under 64 KB each, which the applier's deployed rule matches", async () => {
    // Facts with a large payload each: the entries are cut by bytes before they reach 25 facts.
    const heavy = (n: number) => {
      const base = attach("ten_wire", "req_wire", n);
      return { ...base, data: { ...base.data, padding: "x".repeat(4_000) } };
    };
    const facts = Array.from({ length: 40 }, (_, n) => heavy(n));
    const entries = await putOnTheWire(facts);
    // Cut by bytes (about 13 of these facts to an entry); a last fact left alone travels as itself.
    const packedEntries = entries.filter((entry) => entry.DetailType === factsReportedType);
    expect(packedEntries.length).toBeGreaterThanOrEqual(entries.length - 1);
    expect(entries.every((entry) => entry.Source === "simroot.ingest")).toBe(true);
    expect(entries.length).toBeLessThan(facts.length / 5);
    const sizes = entries.map((entry) => Buffer.byteLength(entry.Detail));
    expect(Math.max(...sizes)).toBeLessThan(64 * 1024);
    expect(Math.max(...sizes)).toBeGreaterThan(maxPackedBytes / 2);
    const carried = entries.flatMap((entry) => {
      const detail = JSON.parse(entry.Detail) as DomainEvent;
      return entry.DetailType === factsReportedType ? (detail.data.facts as DomainEvent[]) : [detail];
    });
    expect(carried.map((event) => event.id)).toEqual(facts.map((event) => event.id));
    for (const entry of entries) {
      const envelope = { source: entry.Source, "detail-type": entry.DetailType, detail: JSON.parse(entry.Detail), resources: [] };
      expect(matchesPattern(rules.operatorEvents.pattern, envelope)).toBe(true);
      expect(matchesPattern(rules.profileSwitches.pattern, envelope)).toBe(false);
    }
  });
});
