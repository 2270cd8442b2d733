/**
 * Format `simroot`: our own normalized events (one NormalizedEvent object, or a JSON array of
 * them), signed per Standard Webhooks 1.0 (standardwebhooks.com, spec/standard-webhooks.md):
 *
 * - `webhook-id`, `webhook-timestamp` (unix seconds), `webhook-signature`: a space-delimited
 *   list of `v1,<base64 HMAC-SHA256>` and/or `v1a,<base64 ed25519 signature>`, both over
 *   `${id}.${timestamp}.${body}`.
 * - `v1` is keyed with the base64-decoded part of the `whsec_<base64>` secret; `v1a` is checked
 *   against the `whpk_<base64 raw 32-byte key>` public key (or a PEM SubjectPublicKeyInfo).
 * - A source with a public key accepts `v1a` signatures only; one without, `v1` only.
 * - Any one valid signature passes (senders list several while rotating keys; at most 8); the timestamp
 *   must lie within 5 minutes of now either way (replay protection).
 */
import { createHmac, type KeyObject, timingSafeEqual, verify } from "node:crypto";
import { normalizedEventSchema, type NormalizedEvent } from "../../catalogue/catalogue.ts";
import type { Adapter, AdapterItem, SourceCredentials } from "../adapter.ts";
import { unauthenticated } from "./auth.ts";
import { invalidBodyOf, jsonItems } from "./body.ts";
import { ed25519PublicKey } from "./keys.ts";
import { checkedItem, refused, zodIssues } from "./items.ts";

const toleranceSeconds = 5 * 60;
/** Signatures a `webhook-signature` header may list: a sender lists one per key it signs with while rotating. */
const maxSignatures = 8;
const secretPrefix = "whsec_";
/**
 * Standard Webhooks ids are short (`msg_` and a KSUID: 31 characters). `webhook-id` keys the idempotency record, whose
 * partition key DynamoDB bounds at 2,048 bytes: an id of 2,100 characters, validly signed, was a 500 (review 80).
 */
export const maxWebhookIdLength = 256;

export const simrootAdapter: Adapter = {
  format: "simroot",
  /** Standard Webhooks payloads are JSON. */
  mediaTypes: ["application/json"],

  authenticate(request, credentials) {
    const id = request.headers["webhook-id"];
    const timestamp = request.headers["webhook-timestamp"];
    const signatures = request.headers["webhook-signature"];
    if (!id || !timestamp || !signatures) throw unauthenticated("Missing webhook-id, webhook-timestamp or webhook-signature");
    // The spec forbids a `.` in either: it would make `${id}.${timestamp}.${body}` ambiguous.
    if (id.includes(".") || !/^\d{1,12}$/.test(timestamp)) throw unauthenticated("Malformed webhook-id or webhook-timestamp");
    if (id.length > maxWebhookIdLength) throw unauthenticated(`webhook-id is longer than ${maxWebhookIdLength} characters`);
    if (Math.abs(request.now.getTime() / 1000 - Number(timestamp)) > toleranceSeconds) {
      throw unauthenticated("webhook-timestamp is more than 5 minutes from now");
    }
    // Each listed signature costs a pass over the body (an ed25519 verification): a sender lists a few while it rotates
    // keys, an unauthenticated request listed thousands (3,000 `v1,x` fit in 16 KB of header: 12 s of CPU, review 78).
    const listed = signatures.split(" ").filter((signature) => signature !== "");
    if (listed.length > maxSignatures) throw unauthenticated(`webhook-signature lists more than ${maxSignatures} signatures`);
    // Signed over the body's bytes as received (a BOM or invalid UTF-8 included), not its decoded text.
    const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`, "utf8"), request.bytes ?? Buffer.from(request.body, "utf8")]);
    const check = signatureCheck(signed, credentials);
    if (!listed.some(check)) throw unauthenticated("No valid webhook signature");
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

/**
 * Whether one listed signature is valid. The HMAC of the signed bytes is computed once, on the first `v1` signature,
 * and the public key read once, however many are listed.
 */
function signatureCheck(signed: Buffer, credentials: SourceCredentials): (signature: string) => boolean {
  // Asymmetric signing means simroot holds nothing that can sign the sender's messages: with a public key, `v1` HMAC
  // signatures are not checked at all. Sources created with a key before review 80 also hold a generated
  // `webhookSecret`; the key wins and that secret is ignored (it was shown once and stored, so whoever read it could
  // otherwise forge the sender's messages). A sender that signed with it gets 401 until it signs v1a (or the source is
  // rotated to a secret).
  const webhookSecret = credentials.webhookPublicKey ? undefined : credentials.webhookSecret;
  let expectedHmac: Buffer | undefined | null = null;
  let publicKey: KeyObject | undefined | null = null;
  return (signature) => {
    const comma = signature.indexOf(",");
    if (comma < 0) return false;
    const version = signature.slice(0, comma);
    const presented = Buffer.from(signature.slice(comma + 1), "base64");
    if (version === "v1" && webhookSecret) {
      if (expectedHmac === null) expectedHmac = hmacOf(signed, webhookSecret);
      return expectedHmac !== undefined && presented.length === expectedHmac.length && timingSafeEqual(presented, expectedHmac);
    }
    if (version === "v1a" && credentials.webhookPublicKey) {
      if (presented.length !== 64) return false;
      if (publicKey === null) publicKey = ed25519PublicKey(credentials.webhookPublicKey);
      return publicKey !== undefined && ed25519Valid(presented, signed, publicKey);
    }
    return false;
  };
}

function hmacOf(signed: Buffer, secret: string): Buffer | undefined {
  const key = Buffer.from(secret.startsWith(secretPrefix) ? secret.slice(secretPrefix.length) : secret, "base64");
  return key.length === 0 ? undefined : createHmac("sha256", key).update(signed).digest();
}

function ed25519Valid(presented: Buffer, signed: Buffer, key: KeyObject): boolean {
  try {
    return verify(null, signed, key, presented);
  } catch {
    return false;
  }
}

const invalidBody = invalidBodyOf("simroot body");
