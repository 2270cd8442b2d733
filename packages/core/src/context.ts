/** Who is acting, for which tenant, under which request id: set by the transport, used by every verb. */
export interface RequestContext {
  readonly tenantId: string;
  /** `key:<keyId>`, `source:<sourceId>`, `system:<component>`. */
  readonly actor: string;
  readonly requestId: string;
}

export const systemContext = (tenantId: string, component: string, requestId: string): RequestContext => ({
  tenantId,
  actor: `system:${component}`,
  requestId,
});
