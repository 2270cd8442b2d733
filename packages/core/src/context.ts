import type { Role } from "./access/api-key.ts";

/** Who is acting, for which tenant, under which request id: set by the transport, used by every verb. */
export interface RequestContext {
  readonly tenantId: string;
  /** `key:<keyId>`, `source:<sourceId>`, `system:<component>`. */
  readonly actor: string;
  readonly requestId: string;
  /** The acting key's role, when a key acts (the API): what a webhook subscription it makes or changes may be sent. */
  readonly role?: Role;
  /** The hash of the secret the acting key presented (the API): a change of the tenant's keys commits only while it holds. */
  readonly keySecretHash?: string;
}

export const systemContext = (tenantId: string, component: string, requestId: string): RequestContext => ({
  tenantId,
  actor: `system:${component}`,
  requestId,
});
