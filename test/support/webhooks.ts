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
