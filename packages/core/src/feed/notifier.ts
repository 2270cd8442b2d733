/**
 * The feed's push channel: "the tenant's head moved to version V", told to every instance and
 * every PEP following the tenant, so that none of them has to hold a connection open on an
 * instance (or poll the head) to learn of a change. A notice is a hint, never authority: what
 * a PEP applies is the signed response it then fetches and verifies, so a lost, late or forged
 * notice costs at most a fetch (or the fallback poll's delay), never a wrong view.
 *
 * Topic per tenant: `simroot/<tenantId>/feed`. In AWS the channel is AWS IoT Core (publish
 * through the data plane's HTTPS API, PEPs subscribe over MQTT); locally it is the feed hub of
 * packages/local, which speaks the same Publish wire protocol (see iot-notifier.ts).
 */

export interface HeadMoved {
  readonly tenantId: string;
  readonly version: number;
}

export interface FeedNotifier {
  /** Tells whoever follows the tenant that its head reached `version`. Best effort: never throws. */
  publish(notice: HeadMoved): Promise<void>;
  /**
   * Calls `listener` with every notice of the tenant, whichever instance committed it, and with
   * `undefined` when the channel was interrupted (notices may have been missed: read the head).
   * Returns the unsubscribe. Absent where instances do not subscribe (Lambda).
   */
  subscribe?(tenantId: string, listener: (notice: HeadMoved | undefined) => void): () => void;
}

export const feedTopic = (tenantId: string) => `simroot/${tenantId}/feed`;

/**
 * The MQTT client id a PEP follows the channel with: its API key's id, then a suffix of its own (two connections with
 * one client id would disconnect each other). The channel's authorizer holds the id to the key (subscriber-authorizer.ts).
 */
export function feedClientId(apiKey: string, suffix?: string): string {
  const keyId = /^sr_(key_[0-9A-HJKMNP-TV-Z]{26})_/.exec(apiKey)?.[1];
  if (!keyId) throw new Error("not a simroot API key");
  if (suffix !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(suffix)) throw new Error("a client id suffix is 1 to 64 of A-Z a-z 0-9 _ -");
  return suffix ? `${keyId}.${suffix}` : keyId;
}

/** Parses a notice's payload; undefined when it is not one (the channel carries no authority). */
export function parseHeadMoved(payload: string): HeadMoved | undefined {
  try {
    const parsed = JSON.parse(payload) as Partial<HeadMoved>;
    if (typeof parsed.tenantId === "string" && Number.isSafeInteger(parsed.version) && parsed.version! >= 0) {
      return { tenantId: parsed.tenantId, version: parsed.version! };
    }
  } catch {}
  return undefined;
}

/**
 * Publishes at most one notice per tenant at a time: a burst of commits while a publish is in
 * flight ends in one more publish, of the newest version (notices only ever move forward).
 */
export function coalescing(send: (notice: HeadMoved) => Promise<void>, onError: (error: unknown) => void = () => {}) {
  const tenants = new Map<string, { sending: boolean; next?: number; sent: number }>();
  return async (notice: HeadMoved): Promise<void> => {
    let tenant = tenants.get(notice.tenantId);
    if (!tenant) tenants.set(notice.tenantId, (tenant = { sending: false, sent: 0 }));
    if (notice.version <= Math.max(tenant.sent, tenant.next ?? 0)) return;
    tenant.next = notice.version;
    if (tenant.sending) return;
    tenant.sending = true;
    try {
      while (tenant.next !== undefined) {
        const version = tenant.next;
        tenant.next = undefined;
        try {
          await send({ tenantId: notice.tenantId, version });
          tenant.sent = Math.max(tenant.sent, version);
        } catch (error) {
          onError(error);
        }
      }
    } finally {
      tenant.sending = false;
      // Nothing in flight: forget the tenant (bounded by the tenants publishing right now).
      tenants.delete(notice.tenantId);
    }
  };
}
