/**
 * Schedules as minute-of-week bitmaps, and the local minute-of-week of an instant in a time
 * zone. Minute 0 of the week is Monday 00:00 local wall-clock time.
 *
 * Windows are wall-clock: during a DST spring-forward the skipped local hour never occurs,
 * and during a fall-back the repeated hour matches twice, as a person reading the schedule
 * would expect.
 */
import { weekdays, type Schedule } from "./model.ts";

export const minutesPerWeek = 7 * 24 * 60;
const minuteMs = 60_000;
const hourMs = 3_600_000;
/** 1970-01-01 was a Thursday: day 3 when Monday is day 0. */
const epochWeekMinute = 3 * 24 * 60;

const clockMinutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** One byte per minute of the week, 1 inside a window. Windows whose end precedes their start run into the next day (Sunday wraps to Monday). */
export function compileSchedule(schedule: Schedule): Uint8Array {
  const bitmap = new Uint8Array(minutesPerWeek);
  for (const window of schedule.windows) {
    const start = clockMinutes(window.start);
    const end = clockMinutes(window.end);
    for (const day of window.days) {
      const from = weekdays.indexOf(day) * 1440 + start;
      const to = weekdays.indexOf(day) * 1440 + (end > start ? end : end + 1440);
      for (let minute = from; minute < to; minute++) bitmap[minute % minutesPerWeek] = 1;
    }
  }
  return bitmap;
}

/** Offsets per UTC hour kept per zone before the cache is emptied (about 170 days of hours). */
const maxCachedHours = 4096;

/**
 * The local minute-of-week of instants in one zone. The UTC offset is cached per UTC hour:
 * an hour whose first and last minutes have the same offset has it throughout (zones change
 * offset at most once an hour); an hour containing a transition is marked and computed per
 * instant. Pure: the cache only remembers what Intl computed.
 */
export class ZoneClock {
  readonly timezone: string;
  readonly #format: Intl.DateTimeFormat;
  readonly #offsets = new Map<number, number>();
  #lastAt = Number.NaN;
  #lastMinute = 0;

  constructor(timezone: string) {
    this.timezone = timezone;
    this.#format = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
    });
  }

  /** Local minute-of-week (0 = Monday 00:00) of `at` (epoch ms). */
  minuteOfWeek(at: number): number {
    if (at === this.#lastAt) return this.#lastMinute;
    const hour = Math.floor(at / hourMs);
    let offset = this.#offsets.get(hour);
    if (offset === undefined) {
      const first = this.#offsetMinutes(hour * hourMs);
      const last = this.#offsetMinutes(hour * hourMs + hourMs - minuteMs);
      offset = first === last ? first : Number.NaN;
      if (this.#offsets.size >= maxCachedHours) this.#offsets.clear();
      this.#offsets.set(hour, offset);
    }
    if (Number.isNaN(offset)) offset = this.#offsetMinutes(at);
    const local = Math.floor(at / minuteMs) + offset + epochWeekMinute;
    const minute = ((local % minutesPerWeek) + minutesPerWeek) % minutesPerWeek;
    this.#lastAt = at;
    this.#lastMinute = minute;
    return minute;
  }

  /** Local wall-clock minus UTC, in whole minutes, at the minute containing `at`. */
  #offsetMinutes(at: number): number {
    let year = 0;
    let month = 0;
    let day = 0;
    let hour = 0;
    let minute = 0;
    for (const part of this.#format.formatToParts(at)) {
      if (part.type === "year") year = Number(part.value);
      else if (part.type === "month") month = Number(part.value);
      else if (part.type === "day") day = Number(part.value);
      else if (part.type === "hour") hour = Number(part.value) % 24;
      else if (part.type === "minute") minute = Number(part.value);
    }
    const local = Date.UTC(year, month - 1, day, hour, minute) / minuteMs;
    return local - Math.floor(at / minuteMs);
  }
}

const clocks = new Map<string, ZoneClock>();

/** The shared clock of a zone: one formatter per time zone for the process. */
export function zoneClock(timezone: string): ZoneClock {
  let clock = clocks.get(timezone);
  if (!clock) {
    clock = new ZoneClock(timezone);
    clocks.set(timezone, clock);
  }
  return clock;
}
