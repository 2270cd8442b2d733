/**
 * The RateLimit and RateLimit-Policy fields of an answer (draft-ietf-httpapi-ratelimit-headers), read by a structured
 * field parser (RFC 9651, the `structured-headers` library), not by our own reading: each policy by its name, with its
 * parameters (`q` and `w` in the policy, `r` and `t` in what is left of it).
 */
import { parseList } from "structured-headers";

type Parameters = Readonly<Record<string, number>>;

function byPolicy(field: string | null): Readonly<Record<string, Parameters>> {
  if (field === null) return {};
  return Object.fromEntries(
    parseList(field).map(([name, parameters]) => [
      String(name),
      Object.fromEntries([...parameters].map(([key, value]) => [key, Number(value)])),
    ]),
  );
}

/** Each policy's quota and window, and what is left of it, by the policy's name (`default`, `tenant`). */
export function rateLimitFields(headers: Headers) {
  return { policies: byPolicy(headers.get("ratelimit-policy")), left: byPolicy(headers.get("ratelimit")) };
}
