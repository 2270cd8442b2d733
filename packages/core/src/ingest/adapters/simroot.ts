/**
 * Format `simroot`: our own normalized events (one NormalizedEvent object, or a JSON array of
 * them), signed per Standard Webhooks 1.0 (standardwebhooks.com, spec/standard-webhooks.md):
 *
 * - `webhook-id`, `webhook-timestamp` (unix seconds), `webhook-signature`: a space-delimited
 *   list of `v1,<base64 HMAC-SHA256>` and/or `v1a,<base64 ed25519 signature>`, both over
 *   `${id}.${timestamp}.${body}`.
 * - `v1` is keyed with the base64-decoded part of the `whsec_<base64>` secret; `v1a` is checked
 *   against the `whpk_<base64 raw 32-byte key>` public key (or a PEM SubjectPublicKeyInfo).
 * - Any one valid signature passes (senders list several while rotating keys); the timestamp
 *   must lie within 5 minutes of now either way (replay protection).
 */
import { createHmac, timingSafeEqual, verify } from "node:crypto";
import { normalizedEventSchema, type NormalizedEvent } from "../../catalogue/catalogue.ts";
import type { Adapter, AdapterItem, SourceCredentials } from "../adapter.ts";
import { unauthenticated } from "./auth.ts";
import { invalidBodyOf, jsonItems } from "./body.ts";
import { ed25519PublicKey } from "./keys.ts";
import { checkedItem, refused, zodIssues } from "./items.ts";

const toleranceSeconds = 5 * 60;
const secretPrefix = "whsec_";

export const simrootAdapter: Adapter = {
  format: "simroot",

  authenticate(request, credentials) {
    const id = request.headers["webhook-id"];
    const timestamp = request.headers["webhook-timestamp"];
    const signatures = request.headers["webhook-signature"];
    if (!id || !timestamp || !signatures) throw unauthenticated("Missing webhook-id, webhook-timestamp or webhook-signature");
    // The spec forbids a `.` in either: it would make `${id}.${timestamp}.${body}` ambiguous.
    if (id.includes(".") || !/^\d{1,12}$/.test(timestamp)) throw unauthenticated("Malformed webhook-id or webhook-timestamp");
    if (Math.abs(request.now.getTime() / 1000 - Number(timestamp)) > toleranceSeconds) {
      throw unauthenticated("webhook-timestamp is more than 5 minutes from now");
    }
    // Signed over the body's bytes as received (a BOM or invalid UTF-8 included), not its decoded text.
    const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`, "utf8"), request.bytes ?? Buffer.from(request.body, "utf8")]);
    if (!signatures.split(" ").some((signature) => signatureValid(signature, signed, credentials))) {
      throw unauthenticated("No valid webhook signature");
    }
  },

  /** A single event or an array of them; anything else is not a simroot body. */
  parse(request) {
    return jsonItems(request.body, invalidBody, "the body must be a normalized event object or an array of them").map(
      (raw, index): AdapterItem => {
        const parsed = normalizedEventSchema.safeParse(raw);
        if (!parsed.success) return refused(index, zodIssues(parsed.error));
        return checkedItem(index, [parsed.data as NormalizedEvent]);
      },
    );
  },
};

function signatureValid(signature: string, signed: Buffer, credentials: SourceCredentials): boolean {
  const comma = signature.indexOf(",");
  if (comma < 0) return false;
  const version = signature.slice(0, comma);
  const presented = Buffer.from(signature.slice(comma + 1), "base64");
  if (version === "v1" && credentials.webhookSecret) return hmacValid(presented, signed, credentials.webhookSecret);
  if (version === "v1a" && credentials.webhookPublicKey) return ed25519Valid(presented, signed, credentials.webhookPublicKey);
  return false;
}

function hmacValid(presented: Buffer, signed: Buffer, secret: string): boolean {
  const key = Buffer.from(secret.startsWith(secretPrefix) ? secret.slice(secretPrefix.length) : secret, "base64");
  if (key.length === 0) return false;
  const expected = createHmac("sha256", key).update(signed).digest();
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}

function ed25519Valid(presented: Buffer, signed: Buffer, publicKey: string): boolean {
  const key = ed25519PublicKey(publicKey);
  if (!key || presented.length !== 64) return false;
  try {
    return verify(null, signed, key, presented);
  } catch {
    return false;
  }
}

const invalidBody = invalidBodyOf("simroot body");
