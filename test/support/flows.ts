/** Flow reports as an enforcement point posts them, for teaching a device's baseline and then breaking it. */
export const hour = 60 * 60 * 1000;

export function flowReport(
  deviceId: string,
  windowEnd: Date,
  flows: { destination: string; bytes?: number; decision?: "allow" | "deny"; count?: number }[],
) {
  return {
    pepId: "pep-lyon-1",
    windowStart: new Date(windowEnd.getTime() - 5 * 60 * 1000).toISOString(),
    windowEnd: windowEnd.toISOString(),
    flows: flows.map((flow) => ({
      deviceId,
      destination: flow.destination,
      port: 443,
      protocol: "tcp" as const,
      decision: flow.decision ?? "allow",
      reason: flow.decision === "deny" ? "deny.default" : "allow.policy",
      count: flow.count ?? 3,
      bytes: flow.bytes ?? 20_000,
    })),
  };
}

/** 14 usual windows over 26 hours, ending now: past the detectors' warm-up. */
export async function teachBaseline(
  post: (report: unknown) => Promise<{ status: number }>,
  deviceId: string,
  destination = "telemetry.example.com",
) {
  const now = Date.now();
  for (let window = 13; window >= 0; window--) {
    const answer = await post(
      flowReport(deviceId, new Date(now - window * 2 * hour - 60_000), [{ destination, bytes: 18_000 + window * 100 }]),
    );
    if (answer.status !== 202) throw new Error(`flow report answered ${answer.status}`);
  }
}
