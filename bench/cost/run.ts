/**
 * `npm run cost`: the monthly AWS cost of a fleet (DEVICES, EVENTS_PER_DAY) from the measured
 * units per applied operator event (bench/cost/inputs.ts) and cited prices (bench/cost/prices.ts),
 * beside the same fleet on AWS IoT Core with Device Defender, against the target of $0.01 per
 * device per month, with the scenarios that show what meeting it takes.
 * `npm run cost -- --measure` measures the per-event units on the local runtime instead.
 */
import { streamReaders } from "../../packages/core/src/platform/limits.ts";
import { assumed, measured, writePathTarget } from "./inputs.ts";
import { iotCoreCost, monthlyCost, secondsPerMonth, streamReaderInvocations, type Scenario } from "./model.ts";
import { prices, pricesAsOf } from "./prices.ts";

if (process.argv.includes("--measure")) {
  const { measure } = await import("./measure.ts");
  console.log(JSON.stringify(await measure(), null, 2));
  process.exit(0);
}

const devices = Number(process.env.DEVICES ?? 1_000_000);
const eventsPerDevicePerDay = Number(process.env.EVENTS_PER_DAY ?? 50);
const target = 0.01;
const usd = (value: number) => `$${value.toLocaleString("en-US", { maximumFractionDigits: value < 1 ? 4 : 0 })}`;

console.log(`simroot on AWS, us-east-1: ${devices.toLocaleString("en-US")} devices, ${eventsPerDevicePerDay} events per device per day`);
console.log(`per applied event (measured: ${measured.source}):`, measured.perAppliedEvent);
console.log(`prices: ${pricesAsOf}\n`);

const base: Scenario = { devices, eventsPerDevicePerDay, perEvent: measured.perAppliedEvent, feed: "long-poll" };
const today = monthlyCost(base);
for (const [line, value] of Object.entries(today.lines)) console.log(`  ${line.padEnd(58)} ${usd(value).padStart(10)}`);
console.log(
  `  ${"total per month".padEnd(58)} ${usd(today.total).padStart(10)}   = ${usd(today.perDevice)} per device (target ${usd(target)})\n`,
);

const readers = streamReaderInvocations(today.events, today.storedGb, today.tenants);
const perRecord = (invocations: number) => (invocations / (readers.recordsPerSecond * secondsPerMonth)).toFixed(2);
console.log(
  `the audit stream's readers: ${readers.shards} stream shards receive records (one per tenant and ledger shard; the audit table's ` +
    `${readers.partitions} partitions, one per ${assumed.partitionGb} GB kept ${assumed.auditRetentionDays} days, hold older ones), ${readers.recordsPerSecond.toFixed(0)} records/s; invocations per record: outbox ` +
    `${perRecord(readers.outbox)} (no batching window), history ${perRecord(readers.history)} ` +
    `(${streamReaders.historyWindowSeconds} s window; ${perRecord(streamReaderInvocations(today.events, today.storedGb, today.tenants, 0).history)} without)\n`,
);

const iot = iotCoreCost(devices, eventsPerDevicePerDay);
console.log("the same fleet on AWS IoT Core + Device Defender (messaging and connectivity, not a control plane):");
for (const [line, value] of Object.entries(iot.lines)) console.log(`  ${line.padEnd(58)} ${usd(value).padStart(10)}`);
console.log(`  ${"total per month".padEnd(58)} ${usd(iot.total).padStart(10)}   = ${usd(iot.perDevice)} per device\n`);

const pushed: Scenario = { ...base, feed: "push" };
const targetWrites = { ...measured.perAppliedEvent, writeUnits: writePathTarget.writeUnits };
const viaPipes = { ...targetWrites, busEvents: measured.perAppliedEvent.busEvents - 1 };
// The detectors judged inside the applier's invocation: half an invocation of `consumerMs` less per event.
const detectors = 0.5;
const applierOnly = {
  ...viaPipes,
  consumerInvocations: measured.perAppliedEvent.consumerInvocations - detectors,
  consumerMs: measured.perAppliedEvent.consumerMs - detectors * assumed.consumerMs,
};
const scenarios: [string, Scenario][] = [
  ["measured, PEPs long-poll (a Lambda held per PEP; today's default)", base],
  ["measured, PEPs on the push channel (notices carry changes)", pushed],
  ["+ 8 WCU per applied event (issue 9's target, not reached)", { ...pushed, perEvent: targetWrites }],
  ["+ outbox via Pipes, not a 2nd PutEvents (packed entries only)", { ...pushed, perEvent: viaPipes }],
  ["+ the detectors in the applier (its packed entries only)", { ...pushed, perEvent: applierOnly }],
  ["+ provisioned reads and writes at 70% (a production option)", { ...pushed, perEvent: applierOnly, provisionedUtilisation: 0.7 }],
];
const notice = monthlyCost(pushed).notice;
console.log(
  `push channel: a notice a second per tenant of ${notice.bytes} bytes (${notice.carried ? `carries its change: no poll for it, ${notice.units} IoT message${notice.units === 1 ? "" : "s"}${notice.gzipped ? ", gzipped" : ""}` : "too large to carry its change: bare, and each PEP polls for it"}); the feed head bounds it across instances, urgent changes (a revocation) go at once (docs/feed-distribution.md, "Notice rate")\n`,
);
console.log(`what meeting ${usd(target)} per device per month takes (from today, one change at a time):`);
for (const [name, scenario] of scenarios) {
  const { total, perDevice } = monthlyCost(scenario);
  console.log(
    `  ${name.padEnd(58)} ${usd(total).padStart(10)}  ${usd(perDevice).padStart(8)} per device  ${perDevice <= target ? "meets" : "misses"} target`,
  );
}
console.log(
  `\nsources: ${Object.values(prices)
    .map((p) => p.url)
    .join(" ")}`,
);
