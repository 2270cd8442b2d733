/**
 * A loopback HTTP server that records every request (method, path, headers, body) and
 * answers what `answer` says: stands in for Tailscale's API and a SIEM's HTTPS collector in
 * tests and the bench, so the real `fetch` requests are what is checked.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface CollectedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly at: number;
}

export async function startHttpCollector(
  answer: (request: CollectedRequest) => { status: number; body?: unknown } = () => ({ status: 200, body: {} }),
  options: { latencyMs?: number } = {},
) {
  const requests: CollectedRequest[] = [];
  const waiters = new Set<() => void>();
  const server = createServer(async (request, response) => {
    let body = "";
    for await (const chunk of request) body += chunk;
    const collected = { method: request.method!, path: request.url!, headers: request.headers, body, at: performance.now() };
    requests.push(collected);
    if (options.latencyMs) await new Promise((resolve) => setTimeout(resolve, options.latencyMs));
    const { status, body: payload } = answer(collected);
    response.writeHead(status, { "content-type": "application/json" });
    response.end(payload === undefined ? "" : JSON.stringify(payload));
    for (const wake of waiters) wake();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    /** Resolves once a recorded request satisfies `test` (checked on each arrival), or rejects after `timeoutMs`. */
    waitFor(test: (request: CollectedRequest) => boolean, timeoutMs = 10_000): Promise<CollectedRequest> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = requests.find(test);
          if (!found) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error("no matching request arrived in time"));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export type HttpCollector = Awaited<ReturnType<typeof startHttpCollector>>;
