import { describe, expect, it } from "vitest";
import { bearerOfRat } from "./rat.ts";

// Values from the TS 29.571 RatType enumeration (Rel-17/18) and the AccessType NON_3GPP_ACCESS.
describe("bearerOfRat", () => {
  it.each(["NR", "EUTRA", "LTE-M", "NBIOT", "UTRA", "GERA", "NR_U", "EUTRA_U", "NR_REDCAP", "NR_EREDCAP", "HSPA_EVOLUTION"])(
    "%s is cellular",
    (rat) => {
      expect(bearerOfRat(rat)).toBe("cellular");
    },
  );

  it.each(["WLAN", "TRUSTED_WLAN", "TRUSTED_N3GA", "NON_3GPP_ACCESS"])("%s is wifi", (rat) => {
    expect(bearerOfRat(rat)).toBe("wifi");
  });

  it.each([
    "NR_LEO",
    "NR_MEO",
    "NR_GEO",
    "NR_OTHER_SAT",
    "WB_E_UTRAN_LEO",
    "WB_E_UTRAN_OTHERSAT",
    "NB_IOT_LEO",
    "NB_IOT_GEO",
    "NB_IOT_OTHERSAT",
    "LTE_M_LEO",
    "LTE_M_MEO",
    "LTE_M_OTHERSAT",
  ])("%s is satellite", (rat) => {
    expect(bearerOfRat(rat)).toBe("satellite");
  });

  it("reads values case-insensitively and with either separator", () => {
    expect(bearerOfRat("nr_leo")).toBe("satellite");
    expect(bearerOfRat("lte-m-geo")).toBe("satellite");
    expect(bearerOfRat(" wlan ")).toBe("wifi");
  });

  it("takes an unknown RAT for cellular", () => {
    expect(bearerOfRat("SOMETHING_NEW")).toBe("cellular");
    expect(bearerOfRat("")).toBe("cellular");
  });
});
