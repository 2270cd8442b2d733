/** Warm baselines written straight into the store (what 14 usual windows over a day would leave). */
import { defaultDetectorSettings, observeWindow, saveBaseline, type DeviceBaseline, type Ports } from "@simroot/core";

export async function warmBaselines(ports: Ports, tenantId: string, deviceIds: readonly string[], destination = "telemetry.example.com") {
  const now = Date.now();
  await Promise.all(
    deviceIds.map(async (deviceId) => {
      let baseline: DeviceBaseline | undefined;
      for (let window = 13; window >= 0; window--) {
        const at = new Date(now - window * 2 * 3600_000 - 60_000).toISOString();
        const flows = [
          {
            deviceId,
            destination,
            port: 443,
            protocol: "tcp" as const,
            decision: "allow" as const,
            reason: "allow.rule",
            count: 3,
            bytes: 20_000,
          },
        ];
        baseline = observeWindow(baseline, undefined, { deviceId, at, pepId: "bench", flows }, defaultDetectorSettings).baseline;
      }
      await saveBaseline(ports, tenantId, baseline!);
    }),
  );
}

export function oddReport(deviceIds: readonly string[], destination: string) {
  const end = new Date();
  return {
    pepId: "bench-pep",
    windowStart: new Date(end.getTime() - 300_000).toISOString(),
    windowEnd: end.toISOString(),
    flows: deviceIds.map((deviceId) => ({
      deviceId,
      destination,
      port: 443,
      protocol: "tcp" as const,
      decision: "allow" as const,
      reason: "allow.rule",
      count: 2,
      bytes: 4_000,
    })),
  };
}
