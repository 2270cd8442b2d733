/**
 * Host names in policies and requests. DNS names are case-insensitive and may end with the
 * root dot; both sides are normalized the same way before they are compared.
 */

const label = "[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?";

/** An exact host (`api.example.com`) or a leading wildcard (`*.example.com`). */
export const hostPattern = new RegExp(`^(\\*\\.)?${label}(\\.${label})*\\.?$`);

/** Lower-case without the trailing root dot. Returns `host` itself when it is already normal (no allocation). */
export function normalizeHost(host: string): string {
  const end = host.length - 1;
  const trimmed = end > 0 && host.charCodeAt(end) === 46 ? host.slice(0, end) : host;
  return trimmed.toLowerCase();
}

/** For `*.example.com` the suffix `example.com` its subdomains end with; null for an exact host. */
export function wildcardSuffix(pattern: string): string | null {
  return pattern.startsWith("*.") ? normalizeHost(pattern.slice(2)) : null;
}
