/**
 * Cloudflare's custom device posture integration (service-to-service): Cloudflare POSTs
 * `{ devices: [{ device_id, email, serial_number, mac_address, virtual_ipv4, hostname, ... }] }`
 * (at most 1,000 devices) and expects `{ result: { <device_id>: { s2s_id, score } } }` with a
 * score from 0 to 100. A WARP device is simroot's device whose `cloudflare/device` label holds
 * its device_id, or whose IMEI is the serial number Cloudflare reports. A device simroot does
 * not know scores 0: unknown is not trusted.
 */
import * as z from "zod";
import type { Device } from "../../device/device.ts";
import { getDevice, listDevices } from "../../device/read.ts";
import { resolveDevice } from "../../device/store.ts";
import { verb } from "../../verb.ts";
import { cloudflareDeviceLabel, postureOf } from "./posture.ts";
import type { Ports } from "../../ports.ts";
import type { RequestContext } from "../../context.ts";

export const cloudflarePostureRequest = z
  .object({
    devices: z
      .array(
        z
          .object({
            device_id: z.string().min(1).max(128),
            email: z.string().max(320).optional(),
            serial_number: z.string().max(128).optional(),
            mac_address: z.string().max(64).optional(),
            virtual_ipv4: z.string().max(64).optional(),
            hostname: z.string().max(253).optional(),
          })
          .loose(),
      )
      .max(1000),
  })
  .meta({ id: "CloudflarePostureRequest" });

export const cloudflarePostureResponse = z
  .object({ result: z.record(z.string(), z.object({ s2s_id: z.string(), score: z.number().int().min(0).max(100) })) })
  .meta({ id: "CloudflarePostureResponse" });
export type CloudflarePostureResponse = z.output<typeof cloudflarePostureResponse>;

async function deviceFor(
  ports: Ports,
  ctx: RequestContext,
  warp: { device_id: string; serial_number?: string },
  labelled: Map<string, Device[]>,
) {
  const byLabel = labelled.get(warp.device_id);
  if (byLabel) return speaksFor(byLabel);
  if (!warp.serial_number || !/^\d{14,15}$/.test(warp.serial_number)) return undefined;
  // Read afresh: a cached alias may name a device revoked through another instance, its equipment registered again
  // since, and score the replacement by the revoked one (review 110).
  const id = await resolveDevice(ports, ctx.tenantId, { imei: warp.serial_number }, true);
  return id ? getDevice(ports, ctx, { id }) : undefined;
}

/**
 * The tenant's devices by their `cloudflare/device` label. O(fleet) per call: Cloudflare polls
 * at the integration's interval (minutes), each poll covering up to 1,000 devices.
 */
async function labelIndex(ports: Ports, ctx: RequestContext): Promise<Map<string, Device[]>> {
  const index = new Map<string, Device[]>();
  let cursor: string | undefined;
  do {
    const page = await listDevices(ports, ctx, { limit: 500, cursor });
    for (const device of page.items) {
      const warp = device.labels[cloudflareDeviceLabel];
      if (warp) index.set(warp, [...(index.get(warp) ?? []), device]);
    }
    cursor = page.next;
  } while (cursor);
  return index;
}

/**
 * The device that speaks for a WARP device several are labelled with (review 160: the last listed did, so a revoked
 * device, which keeps its labels, locked out the WARP device its replacement carries, and an active one listed last hid
 * a suspended one): the devices not revoked, when there is one, and of those the lowest score.
 */
function speaksFor(devices: readonly Device[]): Device {
  const live = devices.filter((device) => device.state !== "revoked");
  const pool = live.length > 0 ? live : devices;
  return pool.reduce((lowest, device) => (postureOf(device).score < postureOf(lowest).score ? device : lowest));
}

/** Scores each device of Cloudflare's request. */
export const scoreCloudflareDevices = verb(cloudflarePostureRequest, async (ports, ctx, input): Promise<CloudflarePostureResponse> => {
  const index = await labelIndex(ports, ctx);
  const result: CloudflarePostureResponse["result"] = {};
  for (const warp of input.devices) {
    const device = await deviceFor(ports, ctx, warp, index);
    result[warp.device_id] = { s2s_id: device?.id ?? "", score: device ? postureOf(device).score : 0 };
  }
  return { result };
});

export { cloudflareDeviceLabel };
