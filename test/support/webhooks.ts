import type { BusEnvelope } from "@simroot/core";
import { createHmac } from "node:crypto";

/** Signs a body the way a Standard Webhooks sender does (`v1`, HMAC-SHA256 keyed with the whsec_ secret). */
export function standardWebhookHeaders(
  secret: string,
  body: string,
  id = `msg_${Math.random().toString(36).slice(2)}`,
  timestamp = Math.floor(Date.now() / 1000),
) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const signature = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": `v1,${signature}`,
    "content-type": "application/json",
  };
}

/** A `device.quarantined` event of `tenantId` as the bus delivers it to the webhooks rule. */
export function quarantinedEnvelope(tenantId: string, id: string): BusEnvelope {
  const time = new Date().toISOString();
  return {
    version: "0",
    id,
    "detail-type": "device.quarantined",
    source: "simroot",
    account: "local",
    time,
    region: "local",
    resources: [],
    detail: { id, type: "device.quarantined", tenantId, subject: "dev_x", time, actor: "test", requestId: "req_1", data: {} },
  } as BusEnvelope;
}
