/**
 * A PEP whose feed went stale let a device it knew quarantined (or suspended) reach the break-glass destinations, which
 * a fresh feed denied it (review 135): only a revoked device was kept out of them. An active one still reaches them.
 */
import { describe, expect, it } from "vitest";
import { PepEngine } from "./engine.ts";
import { binding, device, rule, testFeed, type EntryBody } from "./feed.test-support.ts";
import { PepState } from "./state.ts";

const meterIp = "10.20.0.7";
const remediation = { fqdn: "updates.example.com", ports: [443], protocol: "tcp" };

function staleWorld(state: string) {
  const feed = testFeed();
  const pep = new PepState(feed.tenantId);
  const bodies: EntryBody[] = [
    device("dev_a", state),
    binding(meterIp, "dev_a"),
    rule("r1"),
    { kind: "settings", key: "enforcement", value: { quarantineDestinations: [remediation], failMode: "closed" } },
  ];
  const snapshot = feed.snapshot(10, bodies);
  pep.replaceWith(snapshot.entries);
  pep.version = 10;
  pep.head = snapshot.signed;
  const engine = new PepEngine(pep, { breakGlass: ["192.0.2.0/24", "sos.example.com"], now: feed.now });
  return { engine, feed };
}

describe("break-glass and the device states the PEP knows", () => {
  it("keeps a quarantined device to its quarantine destinations when the feed is stale", () => {
    const { engine, feed } = staleWorld("quarantined");
    const sos = { sourceIp: meterIp, destination: { ip: "192.0.2.10" }, port: 443, protocol: "tcp" } as const;
    // Fresh: the quarantine holds, the break-glass network is not a quarantine destination.
    expect(engine.decide(sos)).toMatchObject({ allow: false, reason: "deny.quarantined" });
    feed.advance(60_000);
    expect(engine.fresh()).toBe(false);
    // Stale: the same device, known quarantined, must not reach more than while the feed was fresh.
    expect(engine.decide(sos)).toMatchObject({ allow: false, deviceId: "dev_a" });
  });

  it("keeps a suspended device out of the break-glass destinations when the feed is stale", () => {
    const { engine, feed } = staleWorld("suspended");
    const sos = { sourceIp: meterIp, destination: { fqdn: "sos.example.com" }, port: 443, protocol: "tcp" } as const;
    expect(engine.decide(sos)).toMatchObject({ allow: false, reason: "deny.suspended" });
    feed.advance(60_000);
    expect(engine.decide(sos)).toMatchObject({ allow: false, deviceId: "dev_a" });
  });

  it("still lets an active device reach the break-glass destinations when the feed is stale", () => {
    const { engine, feed } = staleWorld("active");
    const sos = { sourceIp: meterIp, destination: { fqdn: "sos.example.com" }, port: 443, protocol: "tcp" } as const;
    feed.advance(60_000);
    expect(engine.decide(sos)).toMatchObject({ allow: true, reason: "allow.break-glass", deviceId: "dev_a" });
  });
});
