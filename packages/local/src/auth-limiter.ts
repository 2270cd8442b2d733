/**
 * Failed authentications per client address, counted before any work (review 89). Every request with bad credentials
 * costs a store read and a signature or hash check (ingestion runs every format's check on a refusal, on purpose), and
 * nothing limited them before authentication: rate limits count a key's or a source's requests once authenticated.
 * Past `failures` answers 401 to one address within `windowSeconds`, its requests are answered 429 problem+json with
 * `Retry-After`, before the app reads anything, until the window ends; a success does not reset the count.
 *
 * One process's memory, bounded: at most `maxAddresses` addresses (IPv6 ones by their /64, what one host is given),
 * the oldest forgotten first. Each instance counts alone: N instances behind a balancer let an address fail N times the
 * limit. The address is the socket's: behind a proxy every client shares the proxy's (turn it off, `failures` 0, or
 * set it higher). Loopback clients are not counted unless `loopback` says so: on a laptop every client (the console, the
 * demo, local PEPs) shares 127.0.0.1, and one PEP left polling with a revoked key would lock all of them out, while a
 * client on the machine itself has cheaper ways to load it. In AWS the gateway's throttling applies instead (README
 * "Limits before authentication").
 */
import { newId } from "@simroot/core";

export interface AuthLimits {
  /** Failed authentications an address may have in a window (0: no limit). */
  readonly failures: number;
  readonly windowSeconds: number;
  readonly maxAddresses: number;
  /** Count loopback clients too (127.0.0.0/8, ::1). */
  readonly loopback?: boolean;
}

export const defaultAuthLimits: AuthLimits = { failures: 20, windowSeconds: 60, maxAddresses: 10_000 };

const isLoopback = (address: string) => address === "::1" || /^(::ffff:)?127\./i.test(address);

type NodeEnv = { readonly incoming?: { readonly socket?: { readonly remoteAddress?: string | undefined } } };
type Fetch<Env extends NodeEnv> = (request: Request, env: Env) => Response | Promise<Response>;

/** `fetch` behind the limit (`@hono/node-server` hands the Node request as `env.incoming`). */
export function limitFailedAuthentications<Env extends NodeEnv>(
  fetch: Fetch<Env>,
  limits: AuthLimits = defaultAuthLimits,
  now = Date.now,
): Fetch<Env> {
  if (limits.failures <= 0) return fetch;
  const counts = new Map<string, { failed: number; resetAt: number }>();
  return async (request, env) => {
    const remote = env.incoming?.socket?.remoteAddress ?? "unknown";
    if (!limits.loopback && isLoopback(remote)) return fetch(request, env);
    const address = clientKey(remote);
    const at = now();
    let count = counts.get(address);
    if (count && count.resetAt <= at) {
      counts.delete(address);
      count = undefined;
    }
    if (count && count.failed >= limits.failures) return tooMany(request, limits, Math.ceil((count.resetAt - at) / 1000));
    const response = await fetch(request, env);
    if (response.status === 401) {
      if (!count) {
        count = { failed: 0, resetAt: at + limits.windowSeconds * 1000 };
        counts.set(address, count);
        if (counts.size > limits.maxAddresses) counts.delete(counts.keys().next().value!);
      }
      count.failed++;
    }
    return response;
  };
}

function tooMany(request: Request, limits: AuthLimits, retryAfter: number): Response {
  const requestId = newId("request");
  const body = {
    type: "urn:simroot:problem:auth.too_many_failures",
    title: "auth.too_many_failures",
    status: 429,
    detail: `More than ${limits.failures} failed authentications from this address in ${limits.windowSeconds} s: retry in ${retryAfter} s`,
    instance: new URL(request.url).pathname,
    requestId,
  };
  return new Response(JSON.stringify(body), {
    status: 429,
    headers: {
      "content-type": "application/problem+json",
      "retry-after": String(retryAfter),
      "x-request-id": requestId,
      "cache-control": "no-store",
    },
  });
}

/** An IPv4 address as it is (an IPv4-mapped IPv6 one too); an IPv6 one by its /64. */
export function clientKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(":")) return address;
  const [head = "", tail = ""] = address.split("%")[0]!.split("::");
  const [before, after] = [head ? head.split(":") : [], tail ? tail.split(":") : []];
  const groups = address.includes("::") ? [...before, ...Array(Math.max(0, 8 - before.length - after.length)).fill("0"), ...after] : before;
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group || "0", 16).toString(16))
    .join(":")}::/64`;
}
