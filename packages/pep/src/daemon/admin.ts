/**
 * The admin listener, apart from the ext_authz one (there every path is a check, so a
 * device asking for /healthz must not be answered 200): `GET /healthz` (the version held,
 * the head's expiry, whether the PEP fails closed; 503 while it does; whether a snapshot
 * is under way with its revocations enforced early, `snapshot.pending`, which alone keeps
 * 200) and `POST /v1/decide` (a JSON decision request, answered with the decision).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { isIP } from "node:net";
import * as z from "zod";
import { bearerSchema } from "@simroot/core/catalogue/catalogue";
import { countrySchema } from "@simroot/core/policy/model";
import type { PepEngine } from "../engine.ts";
import type { PepState } from "../state.ts";
import type { FeedSync } from "../sync.ts";
import type { FlowReporter } from "./flows.ts";

const ipSchema = z
  .string()
  .max(64)
  .refine((ip) => isIP(ip) !== 0, "an IPv4 or IPv6 address")
  // A zone id makes another key than every binding and revoked address (review 85).
  .refine((ip) => !ip.includes("%"), "an address without a zone id");

export const decideBodySchema = z
  .strictObject({
    sourceIp: ipSchema.optional(),
    deviceId: z.string().min(1).max(128).optional(),
    destination: z
      .strictObject({ ip: ipSchema.optional(), fqdn: z.string().min(1).max(253).optional() })
      .refine((d) => d.ip !== undefined || d.fqdn !== undefined, "give the destination ip, fqdn or both"),
    port: z.number().int().min(0).max(65535),
    protocol: z.enum(["tcp", "udp"]),
    bearer: bearerSchema.optional(),
    country: countrySchema.optional(),
    principal: z.string().min(1).max(256).optional(),
    at: z.number().int().optional(),
  })
  .refine((body) => body.sourceIp !== undefined || body.deviceId !== undefined, {
    message: "give sourceIp or deviceId",
    path: ["sourceIp"],
  });

const maxBodyBytes = 64 * 1024;

function send(response: ServerResponse, status: number, body: unknown, contentType = "application/json") {
  response.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
  response.end(JSON.stringify(body));
}

const problem = (response: ServerResponse, status: number, code: string, title: string, errors: { path: string; message: string }[] = []) =>
  send(
    response,
    status,
    { type: `urn:simroot:problem:${code}`, title, status, ...(errors.length ? { errors } : {}) },
    "application/problem+json",
  );

async function readBody(request: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxBodyBytes) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export interface AdminDeps {
  readonly engine: PepEngine;
  readonly state: PepState;
  readonly sync?: FeedSync;
  readonly flows?: FlowReporter;
}

/**
 * What /healthz answers. `snapshot.pending`: a snapshot is under way and its revocations (with the addresses they
 * released) are enforced ahead of its other pages, over the view of the version held: a partial view, stricter than
 * that version's alone. It is reported, not failed: the PEP still decides from a verified, fresh view (a restart would
 * only take the snapshot again from its first page), and once the head held expires before the snapshot completes,
 * `failClosed` says so with a 503 as for any stale feed.
 */
export function health({ engine, state, sync, flows }: AdminDeps) {
  const status = engine.status();
  return {
    status: status.fresh ? "ok" : "fail-closed",
    failClosed: !status.fresh,
    tenantId: state.tenantId,
    version: status.version,
    epoch: state.epoch,
    headExpiresAt: status.headExpiresAt,
    snapshot: state.snapshotPending
      ? {
          pending: true,
          ...(state.snapshotPendingSince === undefined ? {} : { since: state.snapshotPendingSince }),
          revokedAddresses: state.pendingRevokedCount,
        }
      : { pending: false },
    policy: {
      version: status.policyVersion,
      compilations: status.compilations,
      ...(status.compileError ? { error: status.compileError } : {}),
    },
    view: { devices: state.devices.size, bindings: state.bindings.size, rules: state.policies.size, grants: state.grants.size },
    ...(sync ? { sync: sync.stats } : {}),
    ...(flows ? { flows: { ...flows.stats, pending: flows.pending } } : {}),
  };
}

export function adminHandler(deps: AdminDeps) {
  return async (request: IncomingMessage, response: ServerResponse) => {
    try {
      const path = new URL(request.url ?? "/", "http://pep").pathname;
      if (path === "/healthz" && (request.method === "GET" || request.method === "HEAD")) {
        const body = health(deps);
        return send(response, body.failClosed ? 503 : 200, body);
      }
      if (path === "/v1/decide" && request.method === "POST") {
        const text = await readBody(request);
        if (text === undefined) return problem(response, 413, "request.too_large", `The body exceeds ${maxBodyBytes} bytes`);
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          return problem(response, 400, "request.invalid_json", "The body is not JSON");
        }
        const parsed = decideBodySchema.safeParse(json);
        if (!parsed.success) {
          const errors = parsed.error.issues.map((issue) => ({ path: issue.path.map(String).join("."), message: issue.message }));
          return problem(response, 400, "request.invalid", "The decision request is invalid", errors);
        }
        return send(response, 200, deps.engine.decide(parsed.data));
      }
      return problem(response, 404, "request.not_found", `No route ${request.method} ${path}`);
    } catch {
      if (!response.headersSent) problem(response, 500, "internal", "The enforcement point failed");
    }
  };
}
