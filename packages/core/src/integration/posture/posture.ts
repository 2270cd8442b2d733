/**
 * A device's posture as ZTNA products take it: a 0-100 score (Cloudflare's custom device
 * posture scale) from simroot's verdict. Revoked and suspended devices score 0, quarantined
 * 10; an active device starts at 100 and loses points for what simroot knows about it:
 * roaming (20), unreachable (10), no IoT SAFE credential bound (10). The rules are here and
 * only here, so every export scores alike.
 */
import type { Device } from "../../device/device.ts";

export interface Posture {
  readonly deviceId: string;
  readonly state: Device["state"];
  readonly score: number;
  readonly roaming: boolean;
  /** Why the score is below 100, for the record. */
  readonly reasons: readonly string[];
}

export function postureOf(device: Device): Posture {
  const roaming = device.identity.roaming?.roaming ?? false;
  const base = { deviceId: device.id, state: device.state, roaming };
  if (device.state === "revoked" || device.state === "suspended") return { ...base, score: 0, reasons: [device.state] };
  if (device.state === "quarantined") return { ...base, score: 10, reasons: ["quarantined"] };
  const reasons = [
    ...(roaming ? ["roaming"] : []),
    ...(device.identity.reachable?.reachable === false ? ["unreachable"] : []),
    ...(device.credentialFingerprint ? [] : ["no-credential"]),
  ];
  const penalty = { roaming: 20, unreachable: 10, "no-credential": 10 } as Record<string, number>;
  return { ...base, score: 100 - reasons.reduce((sum, reason) => sum + penalty[reason]!, 0), reasons };
}

/** The label that maps a device to its Tailscale node (the node id or numeric device id). */
export const tailscaleNodeLabel = "tailscale/node";
/** The label that maps a device to its Cloudflare WARP device id. */
export const cloudflareDeviceLabel = "cloudflare/device";
