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
    parseList(field).map(([name, parameters]) => {
      // The draft's form: each policy a String item (not a Token), each parameter an Integer.
      if (typeof name !== "string") throw new Error(`a policy that is not a String item in ${field}`);
      const values = [...parameters].map(([key, value]) => {
        if (!Number.isInteger(value)) throw new Error(`parameter ${key} of "${name}" is not an Integer in ${field}`);
        return [key, value as number] as const;
      });
      return [name, Object.fromEntries(values)];
    }),
  );
}

/** Each policy's quota and window, and what is left of it, by the policy's name (`default`, `tenant`). */
export function rateLimitFields(headers: Headers) {
  return { policies: byPolicy(headers.get("ratelimit-policy")), left: byPolicy(headers.get("ratelimit")) };
}
