import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileSchedule, minutesPerWeek, ZoneClock } from "./schedule.ts";

const weekdayIndex: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

/** Straight from Intl, no offset arithmetic. */
function referenceMinuteOfWeek(timezone: string, at: number): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: timezone,
    hourCycle: "h23",
    weekday: "short",
    hour: "numeric",
    minute: "numeric",
  }).formatToParts(at);
  const part = (type: string) => parts.find((p) => p.type === type)!.value;
  return weekdayIndex[part("weekday")]! * 1440 + (Number(part("hour")) % 24) * 60 + Number(part("minute"));
}

describe("ZoneClock", () => {
  const zones = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "America/St_Johns",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Tokyo",
  ];

  it("agrees with Intl at random instants, DST transitions included", () => {
    const from = Date.parse("2024-01-01T00:00:00Z");
    const to = Date.parse("2027-01-01T00:00:00Z");
    fc.assert(
      fc.property(fc.constantFrom(...zones), fc.integer({ min: from, max: to }), (zone, at) => {
        expect(new ZoneClock(zone).minuteOfWeek(at)).toBe(referenceMinuteOfWeek(zone, at));
      }),
      { numRuns: 2000 },
    );
  });

  it("agrees with Intl minute by minute around transitions, with its hour cache warm", () => {
    // Europe/Paris, America/St_Johns and Australia/Lord_Howe (a 30-minute DST shift) in 2025.
    const cases: [string, string][] = [
      ["Europe/Paris", "2025-03-30T00:00:00Z"],
      ["Europe/Paris", "2025-10-26T00:00:00Z"],
      ["America/St_Johns", "2025-03-09T04:00:00Z"],
      ["Australia/Lord_Howe", "2025-04-05T14:00:00Z"],
      ["Australia/Lord_Howe", "2025-10-04T15:00:00Z"],
    ];
    for (const [zone, start] of cases) {
      const clock = new ZoneClock(zone);
      for (let minute = 0; minute < 180; minute++) {
        const at = Date.parse(start) + minute * 60_000 + 17_000;
        expect(clock.minuteOfWeek(at), `${zone} ${new Date(at).toISOString()}`).toBe(referenceMinuteOfWeek(zone, at));
      }
    }
  });
});

describe("compileSchedule", () => {
  const count = (bitmap: Uint8Array) => bitmap.reduce((sum, bit) => sum + bit, 0);

  it("covers [start, end) on each listed day", () => {
    const bitmap = compileSchedule({ timezone: "UTC", windows: [{ days: ["mon", "wed"], start: "09:00", end: "17:30" }] });
    expect(count(bitmap)).toBe(2 * 510);
    expect(bitmap[9 * 60]).toBe(1);
    expect(bitmap[17 * 60 + 29]).toBe(1);
    expect(bitmap[17 * 60 + 30]).toBe(0);
    expect(bitmap[1440 + 10 * 60]).toBe(0);
  });

  it("wraps past midnight and from Sunday to Monday, and takes 00:00-24:00 as the whole day", () => {
    const night = compileSchedule({ timezone: "UTC", windows: [{ days: ["sun"], start: "22:00", end: "02:00" }] });
    expect(count(night)).toBe(240);
    expect(night[minutesPerWeek - 1]).toBe(1);
    expect(night[0]).toBe(1);
    expect(night[119]).toBe(1);
    expect(night[120]).toBe(0);
    expect(count(compileSchedule({ timezone: "UTC", windows: [{ days: ["tue"], start: "00:00", end: "24:00" }] }))).toBe(1440);
  });
});
