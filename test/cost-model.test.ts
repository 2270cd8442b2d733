/**
 * The cost model (`npm run cost`, bench/cost/model.ts) against worked examples from the published prices: what it prints
 * is what a deployer plans a fleet's bill by.
 */
import { describe, expect, it } from "vitest";
import { monthlyCost, secondsPerMonth, type Scenario } from "../bench/cost/model.ts";
import { prices } from "../bench/cost/prices.ts";

// 86,400 devices with one event a day each: one event a second on average.
const oneEventASecond = (perEvent: Partial<Scenario["perEvent"]>, provisionedUtilisation?: number): Scenario => ({
  devices: 86_400,
  eventsPerDevicePerDay: 1,
  perEvent: { writeUnits: 0, readUnits: 0, busEvents: 0, consumerInvocations: 0, apiRequests: 0, ...perEvent },
  feed: "push",
  ...(provisionedUtilisation === undefined ? {} : { provisionedUtilisation }),
});
const hours = secondsPerMonth / 3600;

describe("the cost model's DynamoDB capacity", () => {
  it("bills on-demand reads and writes per request unit", () => {
    const { lines } = monthlyCost(oneEventASecond({ readUnits: 1, writeUnits: 1 }));
    // One unit a second for a month: 2,626,560 units.
    expect(lines["DynamoDB reads"]).toBeCloseTo((secondsPerMonth / 1e6) * prices.dynamodb.perMillionReadUnits, 6);
    expect(lines["DynamoDB writes"]).toBeCloseTo((secondsPerMonth / 1e6) * prices.dynamodb.perMillionWriteUnits, 6);
  });

  it("bills a provisioned table's reads as capacity too (one capacity mode per table), sized for the utilisation", () => {
    const full = monthlyCost(oneEventASecond({ readUnits: 1, writeUnits: 1 }, 1)).lines;
    // One unit of capacity for every hour of the month, each.
    expect(full["DynamoDB reads"]).toBeCloseTo(hours * prices.dynamodb.provisionedRcuHour, 6);
    expect(full["DynamoDB writes"]).toBeCloseTo(hours * prices.dynamodb.provisionedWcuHour, 6);
    // At 70% utilisation, capacity for 1/0.7 of the load.
    const seventy = monthlyCost(oneEventASecond({ readUnits: 1, writeUnits: 1 }, 0.7)).lines;
    expect(seventy["DynamoDB reads"]).toBeCloseTo(full["DynamoDB reads"]! / 0.7, 6);
    // Below on-demand's price at a steady load: $0.095 a month against $0.33 for reads.
    expect(seventy["DynamoDB reads"]).toBeLessThan(monthlyCost(oneEventASecond({ readUnits: 1 })).lines["DynamoDB reads"]!);
  });
});

describe("the cost model's applier queue", () => {
  it("bills three requests a message, the idle pollers' long polls, and ingestion's depth reads once a second per instance", () => {
    const idle = monthlyCost(oneEventASecond({})).lines["SQS (the applier's queue)"]!;
    // Five pollers, a 20 s long poll each: 656,640 requests a month, about $0.26.
    expect(idle).toBeCloseTo(((5 * secondsPerMonth) / 20 / 1e6) * prices.sqs.perMillionRequests, 6);
    // A message a second: sent, received, deleted.
    const messages = monthlyCost(oneEventASecond({ queueMessages: 1 })).lines["SQS (the applier's queue)"]!;
    expect(messages - idle).toBeCloseTo(((3 * secondsPerMonth) / 1e6) * prices.sqs.perMillionRequests, 6);
    // Ten webhooks a second on one instance (50 ms each) read the depth once a second, not ten times.
    const busy = monthlyCost(oneEventASecond({ apiRequests: 10 })).lines["SQS (the applier's queue)"]!;
    expect(busy - idle).toBeCloseTo((secondsPerMonth / 1e6) * prices.sqs.perMillionRequests, 6);
  });
});
