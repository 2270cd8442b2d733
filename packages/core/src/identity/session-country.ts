import type { IdentityState, Session } from "./identity-state.ts";

/**
 * The country a session's connections come from, as the control plane knows it (ISO 3166-1 alpha-2): that of the
 * network the session attached through (its PLMN), or, on the cellular bearer, that of a roaming report made since the
 * session began, or of one made before it when the session's attach named no network (a network learns where a SIM is
 * before it opens a session there: review 120). Without a session (`session` undefined), the roaming report's. Policy
 * preview, the IoT authorizer and the bindings PEPs decide with all take it from here (review 117: the PEP was never
 * told, and skipped every country condition; the preview and the authorizer each read another field).
 */
export function sessionCountry(state: IdentityState, session: Session | undefined): string | undefined {
  const roamed = state.roaming?.country;
  if (!session) return roamed;
  if (session.bearer !== "cellular" || roamed === undefined) return session.country;
  const since = Date.parse(state.roaming!.since) >= Date.parse(session.since);
  return since ? roamed : (session.country ?? roamed);
}
