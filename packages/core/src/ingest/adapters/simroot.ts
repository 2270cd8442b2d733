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
import { createHmac, createPublicKey, timingSafeEqual, verify, type KeyObject } from "node:crypto";
import { normalizedEventSchema, type NormalizedEvent } from "../../catalogue/catalogue.ts";
import type { Adapter, AdapterItem, SourceCredentials } from "../adapter.ts";
import { unauthenticated } from "./auth.ts";
import { invalidBodyOf, jsonItems } from "./body.ts";
import { checkedItem, refused, zodIssues } from "./items.ts";

const toleranceSeconds = 5 * 60;
const secretPrefix = "whsec_";
const publicKeyPrefix = "whpk_";
/** DER SubjectPublicKeyInfo header for an Ed25519 key (RFC 8410): the raw 32 bytes follow. */
const ed25519SpkiPrefix = Buffer.from("302a300506032b6570032100", "hex");

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
    const signed = Buffer.from(`${id}.${timestamp}.${request.body}`, "utf8");
    if (!signatures.split(" ").some((signature) => signatureValid(signature, signed, credentials))) {
      throw unauthenticated("No valid webhook signature");
    }
  },

  /** A single event or an array of them; anything else is not a simroot body. */
  parse(request) {
    return jsonItems(request.body, invalidBody, "the body must be a normalized event object or an array of them").map((raw, index): AdapterItem => {
      const parsed = normalizedEventSchema.safeParse(raw);
      if (!parsed.success) return refused(index, zodIssues(parsed.error));
      return checkedItem(index, [parsed.data as NormalizedEvent]);
    });
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
  const key = ed25519Key(publicKey);
  if (!key || presented.length !== 64) return false;
  try {
    return verify(null, signed, key, presented);
  } catch {
    return false;
  }
}

/** `whpk_<base64 raw key>` or a PEM SPKI; undefined when it is neither an Ed25519 key. */
function ed25519Key(publicKey: string): KeyObject | undefined {
  try {
    const key = publicKey.startsWith(publicKeyPrefix)
      ? createPublicKey({ key: Buffer.concat([ed25519SpkiPrefix, rawKey(publicKey.slice(publicKeyPrefix.length))]), format: "der", type: "spki" })
      : createPublicKey(publicKey);
    return key.asymmetricKeyType === "ed25519" ? key : undefined;
  } catch {
    return undefined;
  }
}

function rawKey(base64: string): Buffer {
  const raw = Buffer.from(base64, "base64");
  if (raw.length !== 32) throw new Error("an Ed25519 public key is 32 bytes");
  return raw;
}

const invalidBody = invalidBodyOf("simroot body");
