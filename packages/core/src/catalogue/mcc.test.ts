import { describe, expect, it } from "vitest";
import { countryOfMcc } from "./mcc.ts";

describe("countryOfMcc", () => {
  it.each([
    ["262", "DE"],
    ["208", "FR"],
    ["214", "ES"],
    ["234", "GB"],
    ["235", "GB"],
    ["310", "US"],
    ["316", "US"],
    ["302", "CA"],
    ["334", "MX"],
    ["724", "BR"],
    ["404", "IN"],
    ["405", "IN"],
    ["460", "CN"],
    ["440", "JP"],
    ["450", "KR"],
    ["505", "AU"],
    ["530", "NZ"],
    ["655", "ZA"],
    ["525", "SG"],
    ["424", "AE"],
    ["425", "IL"],
    ["621", "NG"],
    ["639", "KE"],
    ["242", "NO"],
    ["228", "CH"],
    ["286", "TR"],
  ])("MCC %s is %s", (mcc, country) => {
    expect(countryOfMcc(mcc)).toBe(country);
  });

  it("covers every EU and EEA member state", () => {
    const euEea = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO".split(" ");
    const mapped = new Set(Array.from({ length: 800 }, (_, n) => countryOfMcc(String(n).padStart(3, "0"))));
    expect(euEea.filter((country) => !mapped.has(country))).toEqual([]);
  });

  it("names no country for codes shared by several territories, unassigned codes or non-codes", () => {
    expect(countryOfMcc("340")).toBeUndefined(); // French Antilles: several ISO codes
    expect(countryOfMcc("901")).toBeUndefined(); // international networks
    expect(countryOfMcc("999")).toBeUndefined();
    expect(countryOfMcc("26")).toBeUndefined();
    expect(countryOfMcc("toString")).toBeUndefined();
    expect(countryOfMcc("")).toBeUndefined();
  });
});
