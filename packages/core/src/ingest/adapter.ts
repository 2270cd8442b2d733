/**
 * The contract of an ingestion format adapter: authenticate a raw webhook request with the
 * source's credentials, then translate its body into normalized catalogue events. Adapters
 * are pure (no I/O, no clock but the one passed in): the HTTP layer, storage and the bus
 * are someone else's job.
 */
import type { FieldIssue } from "../error.ts";
import type { NormalizedEvent } from "../catalogue/catalogue.ts";

export const ingestFormats = ["simroot", "camara", "nef", "datastreamer", "supersim", "eim"] as const;
export type IngestFormat = (typeof ingestFormats)[number];

/** The raw request as received. Header names are lower-case. */
export interface IngestRequest {
  readonly method: string;
  /** The full public URL the sender posted to (Twilio signs it). */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The body decoded as UTF-8 text. */
  readonly body: string;
  /** The body's bytes exactly as received: signatures cover these (absent: the UTF-8 bytes of `body`). */
  readonly bytes?: Uint8Array;
  /** Now, for timestamp tolerance checks. */
  readonly now: Date;
}

/**
 * A source's credentials, by format. Secrets needed to verify HMACs are kept as given;
 * bearer tokens and Basic passwords could be hashed, but one shape for all keeps rotation simple.
 */
export interface SourceCredentials {
  /** camara, nef, eim: the `Authorization: Bearer` token the sender presents. */
  readonly bearerToken?: string;
  /** datastreamer: HTTP Basic user and password. */
  readonly basicUser?: string;
  readonly basicPassword?: string;
  /** simroot: Standard Webhooks signing secret (`whsec_<base64>`) for `v1` HMAC-SHA256. */
  readonly webhookSecret?: string;
  /** simroot: Standard Webhooks ed25519 public key (`whpk_<base64>` raw 32 bytes, or PEM) for `v1a`; with it, `webhookSecret` is ignored. */
  readonly webhookPublicKey?: string;
  /** supersim: the Twilio account auth token keying X-Twilio-Signature (HMAC-SHA1). */
  readonly twilioAuthToken?: string;
  /** eim: PEM certificates (GSMA CI roots and/or EUM certificates) eUICC notifications must chain to. */
  readonly trustAnchors?: string[];
  /** supersim: a Twilio SharedKey secret, for webhooks that carry X-Twilio-Webhooks-Signature-Settings (HMAC-SHA1 or -SHA256). */
  readonly twilioSharedKeySecret?: string;
}

/** One item of a (possibly batched) body: its normalized event(s), or why it was refused. */
export type AdapterItem =
  | { readonly index: number; readonly ok: true; readonly events: readonly NormalizedEvent[] }
  | {
      readonly index: number;
      readonly ok: false;
      readonly issues: readonly FieldIssue[];
      /** Refused because its origin could not be verified (an eUICC signature): recorded as refused. */
      readonly unverified?: true;
    };

export interface Adapter {
  readonly format: IngestFormat;
  /**
   * The media types (`type/subtype`, parameters aside) its senders label bodies with; the first is the one to send. A
   * body of any other, or unlabelled, is refused (415) before it is read: every format is JSON, and a browser posts JSON
   * cross-origin without a preflight as `text/plain` or form data, or unlabelled (review 83).
   */
  readonly mediaTypes: readonly string[];
  /** Throws SimrootError kind `auth` (code `ingest.unauthenticated`) unless the request is authentic. */
  authenticate(request: IngestRequest, credentials: SourceCredentials): void;
  /**
   * Translates the body. Throws SimrootError kind `input` (code `ingest.invalid_body`, issues
   * naming the fields) when the body as a whole is unusable; otherwise one item per event
   * of the body, each ok or refused on its own.
   */
  parse(request: IngestRequest, credentials?: SourceCredentials): readonly AdapterItem[];
}
