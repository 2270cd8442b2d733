/**
 * How requests authenticate, as OpenAPI security schemes: tenant API keys for the API, and one
 * scheme per webhook authentication for `/v1/ingest/{sourceId}` (the source's format decides which).
 */
export const securitySchemes = {
  apiKey: { type: "http", scheme: "bearer", description: "A tenant API key: `sr_key_..._...`" },
  standardWebhooks: {
    type: "apiKey",
    in: "header",
    name: "webhook-signature",
    description:
      "Format `simroot`: Standard Webhooks 1.0: `webhook-id`, `webhook-timestamp` (within 5 minutes) and `webhook-signature` " +
      "(`v1,<base64 HMAC-SHA256>` keyed with the source's `whsec_` secret, or `v1a,<base64 Ed25519>` for its `whpk_` key) " +
      // biome-ignore lint/suspicious/noTemplateCurlyInString: documentation text naming the signed content, not a template
      "over `${webhook-id}.${webhook-timestamp}.${raw body bytes}`.",
  },
  sourceBearer: {
    type: "http",
    scheme: "bearer",
    description: "Formats `camara`, `nef`, `eim`: the source's bearer token (CAMARA `sinkCredential` ACCESSTOKEN).",
  },
  sourceBasic: { type: "http", scheme: "basic", description: "Format `datastreamer`: the source's HTTP Basic user and password." },
  twilioSignature: {
    type: "apiKey",
    in: "header",
    name: "X-Twilio-Signature",
    description:
      "Format `supersim`: Twilio's request signature over the public URL (the source's `publicBaseUrl`, else the forwarded " +
      "scheme and host) with `bodySHA256`, HMAC-SHA1 keyed with the auth token, or HMAC-SHA256 when the source says so.",
  },
} as const;

/** Any one of the webhook schemes authenticates an ingest request (the source's format says which). */
export const ingestSecurity: Record<string, string[]>[] = [
  { standardWebhooks: [] },
  { sourceBearer: [] },
  { sourceBasic: [] },
  { twilioSignature: [] },
];
