/**
 * The operator-event detectors, pure: an applied change (or a reported eUICC fact) against
 * the device's baseline and its tenant's settings. IMEI change, SIM swap, geofence (a
 * country outside the allowed ones), an attach on a bearer the device never used, and an
 * eUICC profile switch caused by a device change or a fallback.
 */
import { countryOfMcc } from "../catalogue/mcc.ts";
import type { DomainEvent } from "../event/event.ts";
import { isWarm, type DeviceBaseline } from "./baseline.ts";
import type { Anomaly, DetectorSettings } from "./model.ts";

export interface FactVerdict {
  readonly anomaly?: Anomaly;
  /** A bearer the baseline should learn. */
  readonly learnBearer?: string;
}

/** eUICC profile switch causes that mean the profile moved or fell back, not an operator's choice. */
export const suspiciousSwitchCauses = ["deviceChange", "fallback"] as const;

/** The fields of an applied event's (or a reported fact's) data the detectors read. */
type FactData = {
  readonly imei?: unknown;
  readonly previousImei?: unknown;
  readonly cause?: { readonly sourceType?: unknown };
  readonly previousState?: unknown;
  readonly allowed?: unknown;
  readonly country?: unknown;
  readonly mcc?: unknown;
  readonly plmn?: { readonly mcc?: unknown; readonly mnc?: unknown };
  readonly bearer?: unknown;
  readonly rat?: unknown;
  readonly event?: { readonly data?: Record<string, unknown> };
};

const factOf = (event: DomainEvent) => ({ id: event.id, type: event.type, time: event.time, actor: event.actor, data: event.data });

export function judgeFact(
  event: DomainEvent,
  deviceId: string,
  baseline: DeviceBaseline | undefined,
  allowedCountries: readonly string[],
  settings: DetectorSettings,
): FactVerdict {
  const data = event.data as FactData;
  const found = (
    kind: Anomaly["kind"],
    severity: Anomaly["severity"],
    summary: string,
    seen: Record<string, unknown>,
    known: Record<string, unknown>,
  ) => ({
    anomaly: {
      kind,
      deviceId,
      severity,
      summary,
      observedAt: event.time,
      evidence: { seen, baseline: known, facts: [factOf(event)] },
    } satisfies Anomaly,
  });
  switch (event.type) {
    case "device.equipment-changed":
      if (!data.previousImei) return {};
      return found(
        "imei-change",
        "high",
        `${deviceId}'s SIM is now in equipment ${data.imei}, was ${data.previousImei}`,
        { imei: data.imei },
        { imei: data.previousImei },
      );
    case "device.suspended":
    case "device.quarantined": {
      const sourceType = String(data.cause?.sourceType ?? "");
      if (!/sim[-_.]?swap|swapped/i.test(sourceType)) return {};
      return found("sim-swap", "high", `the operator reported a SIM swap for ${deviceId}`, { sourceType }, { state: data.previousState });
    }
    case "device.roaming-changed":
      if (data.allowed !== false) return {};
      return found(
        "geofence",
        "high",
        `${deviceId} is in ${data.country ?? `MCC ${data.mcc}`}, outside its allowed countries`,
        { country: data.country, mcc: data.mcc },
        { allowedCountries },
      );
    case "sim.attached":
    case "bearer.switched": {
      const country = data.plmn?.mcc ? countryOfMcc(String(data.plmn.mcc)) : undefined;
      if (country && allowedCountries.length > 0 && !allowedCountries.includes(country)) {
        return found(
          "geofence",
          "high",
          `${deviceId} attached in ${country} (PLMN ${data.plmn!.mcc}-${data.plmn!.mnc}), outside its allowed countries`,
          { country, plmn: data.plmn },
          { allowedCountries },
        );
      }
      const bearer = String(data.bearer);
      if (!baseline || baseline.bearers.includes(bearer)) return { learnBearer: baseline ? undefined : bearer };
      const settled = baseline.bearers.length > 0 && Date.parse(event.time) - Date.parse(baseline.since) >= settings.warmupMs;
      if (!settled && !isWarm(baseline, event.time, settings)) return { learnBearer: bearer };
      return found(
        "unexpected-bearer",
        "medium",
        `${deviceId} attached over ${bearer}, it only ever used ${baseline.bearers.join(", ")}`,
        { bearer, rat: data.rat },
        { bearers: baseline.bearers },
      );
    }
    case "profile.enabled": {
      const reported = (data.event?.data ?? data) as Record<string, unknown>;
      const cause = String(reported.cause ?? "");
      if (!(suspiciousSwitchCauses as readonly string[]).includes(cause)) return {};
      return found(
        "profile-switch",
        "high",
        `${deviceId}'s eUICC enabled profile ${String(reported.iccid)} because of ${cause}`,
        { iccid: reported.iccid, cause },
        { expected: "operator-initiated switches only" },
      );
    }
    default:
      return {};
  }
}
