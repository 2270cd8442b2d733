/**
 * Where an outbound webhook may be delivered. A subscription's URL is chosen by a tenant's admin, and the delivery is
 * made from inside the deployment: to a loopback, private or link-local address it would reach what the tenant
 * should never reach (the instance metadata service at 169.254.169.254, the control plane's own network). So by
 * default (`Ports.webhookTargets` "public", as in AWS) a subscription naming such an address, or `localhost`, is
 * refused, and a delivery connects only to an address its name resolved to that is public, checked on the very
 * resolution the connection uses (a name that resolves elsewhere by the time of the delivery gains nothing). The
 * local control plane, a laptop tool whose receivers are usually on localhost, delivers anywhere unless
 * SIMROOT_WEBHOOK_TARGETS=public.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP } from "node:net";

export type WebhookTargets = "public" | "any";

const notPublic = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8], // this network
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, instance metadata
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const)
  notPublic.addSubnet(network, prefix, "ipv4");
for (const [network, prefix] of [
  ["::", 96], // unspecified, loopback, and IPv4-compatible (::a.b.c.d)
  ["::ffff:0:0:0", 96], // SIIT (::ffff:0:a.b.c.d)
  ["64:ff9b::", 96], // NAT64: an IPv4 address (a VPC's private one, with DNS64)
  ["64:ff9b:1::", 48], // local-use NAT64
  ["2002::", 16], // 6to4: an IPv4 address embedded
  ["fc00::", 7], // unique local (AWS's IPv6 metadata service is fd00:ec2::254)
  ["fec0::", 10], // site-local
  ["fe80::", 10], // link-local
  ["ff00::", 8], // multicast
  ["2001:db8::", 32],
] as const)
  notPublic.addSubnet(network, prefix, "ipv6");

/** Why `address` (an IP address) is no public one, or undefined when it is. */
export function nonPublicAddress(address: string): string | undefined {
  const bare = address.replace(/^\[|\]$/g, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)?.[1];
  const family = isIP(mapped ?? bare);
  if (family === 0) return undefined;
  return notPublic.check(mapped ?? bare, family === 4 ? "ipv4" : "ipv6") ? `${bare} is not a public address` : undefined;
}

/** Why a subscription may not name `url` under `targets`, or undefined: an address that is not public, or localhost. */
export function webhookUrlProblem(url: string, targets: WebhookTargets): string | undefined {
  if (targets === "any") return undefined;
  const host = new URL(url).hostname.toLowerCase().replace(/\.$/, "");
  if (host === "localhost" || host.endsWith(".localhost")) return `${host} is not a public address`;
  return nonPublicAddress(host);
}

/** Resolves a name to its addresses (the system resolver by default; tests give their own). */
export type Resolve = (hostname: string) => Promise<readonly LookupAddress[]>;
const systemResolve: Resolve = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))));

type LookupCallback = (error: Error | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for the connection: the name's addresses, refused when any is not public (under "public"). */
function connectLookup(targets: WebhookTargets, resolve: Resolve) {
  return (hostname: string, options: { all?: boolean }, callback: LookupCallback) => {
    resolve(hostname).then(
      (addresses) => {
        const refused = targets === "public" ? addresses.map(({ address }) => nonPublicAddress(address)).find(Boolean) : undefined;
        if (refused) return callback(new Error(`${hostname} resolves to an address that is not public (${refused})`), []);
        if (addresses.length === 0) return callback(new Error(`${hostname} has no address`), []);
        if (options.all) return callback(null, [...addresses]);
        return callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (error: Error) => callback(error, []),
    );
  };
}

/**
 * POSTs `body` to `url` and answers the receiver's status (a redirect is not followed: it is the answer). Under
 * "public", the connection goes only to a public address (`webhookUrlProblem` for an address in the URL, the resolution
 * checked for a name).
 */
export function postWebhook(
  url: string,
  request: { readonly headers: Record<string, string>; readonly body: string; readonly timeoutMs: number },
  targets: WebhookTargets,
  resolve: Resolve = systemResolve,
): Promise<number> {
  const target = new URL(url);
  // Never a URL's credentials (a subscription stored before they were refused keeps them): deliveries are signed.
  target.username = "";
  target.password = "";
  const problem = webhookUrlProblem(url, targets);
  if (problem) return Promise.reject(new Error(problem));
  // Taken on use, not imported: as an ES module import, node:http loads Node's fetch with it (about 35 ms of a cold start).
  const client = process.getBuiltinModule(target.protocol === "https:" ? "node:https" : "node:http");
  return new Promise((settle, fail) => {
    const outgoing = client.request(
      target,
      {
        method: "POST",
        headers: { ...request.headers, "content-length": String(Buffer.byteLength(request.body)) },
        lookup: connectLookup(targets, resolve) as never,
        signal: AbortSignal.timeout(request.timeoutMs),
      },
      (response) => {
        response.resume();
        settle(response.statusCode ?? 0);
      },
    );
    outgoing.on("error", (error) =>
      fail(outgoing.destroyed && error.name === "AbortError" ? Object.assign(error, { name: "TimeoutError" }) : error),
    );
    outgoing.end(request.body);
  });
}
