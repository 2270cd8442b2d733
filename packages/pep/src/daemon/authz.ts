/**
 * The Envoy ext_authz HTTP service contract: Envoy forwards each request's method, path and
 * chosen headers to this listener (any path); 200 allows, anything else denies. Here:
 * 200 allow or 403 deny, with the reason in `x-simroot-decision-reason` both ways (the device in
 * `x-simroot-device-id` on an allow only: Envoy may hand a denial's headers to the client), and
 * every failure (an unparseable request, an error) a 403: this service fails closed.
 *
 * Who is asking: `x-forwarded-for`. Envoy (`use_remote_address: true`) appends the peer's
 * address to that header while earlier entries are whatever the client sent, so the client is
 * the entry `xffTrustedHops` from the right (0: Envoy's own, the last), never a spoofable first
 * entry unless proxies before Envoy are declared. Never `x-envoy-external-address`: Envoy sets
 * it for external clients only, and forwards a client's own one untouched when the request is
 * internal (a private, RFC 1918 peer that sent no x-forwarded-for), which a device in an APN's
 * private range is: it named another device's address and was decided as that device (review 85). Where to: `:authority` / `host` (host[:port]),
 * the port defaulting from `x-forwarded-proto` (443 for https, else 80). Bytes for the flow
 * report come from `content-length`, which Envoy sets to the forwarded body's length: 0
 * unless the filter is configured `with_request_body`.
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from "node:http";
import { isIP } from "node:net";
import { hostPattern } from "@simroot/core/policy/host";
import type { DecideRequest, PepDecision, PepEngine } from "../engine.ts";
import type { FlowReporter } from "./flows.ts";

export const reasonHeader = "x-simroot-decision-reason";
export const deviceHeader = "x-simroot-device-id";
export const recordingHeader = "x-simroot-session-recording";

export type AuthzReason = PepDecision["reason"] | "deny.bad-request" | "deny.error";

export interface AuthzOptions {
  readonly xffTrustedHops?: number;
}

export type ParsedCheck =
  | { readonly ok: true; readonly request: DecideRequest; readonly bytes: number }
  | { readonly ok: false; readonly problem: string };

const single = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

function sourceOf(headers: IncomingHttpHeaders, trustedHops: number): string | undefined {
  const forwarded = (Array.isArray(headers["x-forwarded-for"]) ? headers["x-forwarded-for"].join(",") : (headers["x-forwarded-for"] ?? ""))
    .split(",")
    .map((hop) => hop.trim())
    .filter((hop) => hop.length > 0);
  return forwarded[forwarded.length - 1 - trustedHops];
}

function authorityOf(text: string): { host: string; port: number | undefined } | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(text.trim());
  if (!match) return undefined;
  const host = match[1] ?? match[2]!;
  const port = match[3] === undefined ? undefined : Number(match[3]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  if (match[1] !== undefined && isIP(host) !== 6) return undefined;
  return { host, port };
}

/** The decision request an ext_authz check stands for, or why it cannot be decided. */
export function parseCheck(headers: IncomingHttpHeaders, options: AuthzOptions = {}): ParsedCheck {
  const sourceIp = sourceOf(headers, options.xffTrustedHops ?? 0);
  if (sourceIp === undefined || isIP(sourceIp) === 0) return { ok: false, problem: "no client address in x-forwarded-for" };
  // A zone id makes another key than every binding and revoked address: a stale PEP let a revoked device's address, so
  // spelled, reach the break-glass destinations (review 85). A device's address in an APN has none.
  if (sourceIp.includes("%")) return { ok: false, problem: "the client address has a zone id" };
  const authorityText = single(headers[":authority"]) ?? headers.host;
  const authority = authorityText ? authorityOf(authorityText) : undefined;
  if (!authority) return { ok: false, problem: "no destination in :authority or host" };
  const ip = isIP(authority.host) !== 0;
  if (!ip && (authority.host.startsWith("*") || !hostPattern.test(authority.host) || authority.host.length > 253)) {
    return { ok: false, problem: `the destination host ${JSON.stringify(authority.host)} is not a host name` };
  }
  const https = single(headers["x-forwarded-proto"])?.trim().toLowerCase() === "https";
  const length = Number(single(headers["content-length"]) ?? 0);
  return {
    ok: true,
    request: {
      sourceIp,
      destination: ip ? { ip: authority.host } : { fqdn: authority.host },
      port: authority.port ?? (https ? 443 : 80),
      protocol: "tcp",
    },
    bytes: Number.isSafeInteger(length) && length > 0 ? length : 0,
  };
}

function answer(response: ServerResponse, allow: boolean, reason: AuthzReason, explanation: string, decision?: PepDecision) {
  const headers: Record<string, string> = { "content-type": "text/plain; charset=utf-8", [reasonHeader]: reason };
  // The device and the recording are for the upstream, so an allowed request's only (`allowed_upstream_headers`). A
  // denied check's headers Envoy copies into its answer to the client (every one, unless `allowed_client_headers` says
  // otherwise): a revoked device's id reached whoever holds its address now (review 74). The flow report keeps it.
  // On every allow, empty when no device is known (break-glass from an address no device holds): Envoy overwrites the
  // request's header only with one the answer carries, so a client's own x-simroot-device-id went upstream (review 85).
  if (allow) headers[deviceHeader] = decision?.deviceId ?? "";
  if (allow && decision?.sessionRecording) headers[recordingHeader] = "true";
  response.writeHead(allow ? 200 : 403, headers);
  response.end(allow ? "" : `denied: ${explanation}\n`);
}

/** The request listener of the ext_authz port. */
export function authzHandler(engine: PepEngine, flows: FlowReporter | undefined, options: AuthzOptions = {}) {
  return (request: IncomingMessage, response: ServerResponse) => {
    // Envoy sends no body unless told to; whatever comes is not needed.
    request.resume();
    try {
      const check = parseCheck(request.headers, options);
      if (!check.ok) return answer(response, false, "deny.bad-request", check.problem);
      const decision = engine.decide(check.request);
      flows?.record({
        ...(decision.deviceId ? { deviceId: decision.deviceId } : { sourceIp: check.request.sourceIp! }),
        destination: check.request.destination.fqdn ?? check.request.destination.ip!,
        port: check.request.port,
        protocol: "tcp",
        allow: decision.allow,
        reason: decision.reason,
        bytes: check.bytes,
      });
      answer(response, decision.allow, decision.reason, decision.explanation, decision);
    } catch {
      if (!response.headersSent) answer(response, false, "deny.error", "the enforcement point failed to decide and fails closed");
      else response.destroy();
    }
  };
}

/**
 * The ext_authz listener: no Host header is required (the check answers 403, not Node's
 * 400), and a request Node cannot even parse is answered 403 with the reason too.
 */
export function authzServer(handler: RequestListener): Server {
  const server = createServer({ requireHostHeader: false }, handler);
  server.on("clientError", (_error, socket) => {
    if (socket.writable)
      socket.end(`HTTP/1.1 403 Forbidden\r\n${reasonHeader}: deny.bad-request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
    else socket.destroy();
  });
  return server;
}
