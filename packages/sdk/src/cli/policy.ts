import { readFile } from "node:fs/promises";
import type { components } from "../openapi.d.ts";
import { choiceOf, etagFor, type Command, type Context, type OptionSpec } from "./command.ts";
import { listCommand } from "./list.ts";
import { cell, details, type Column } from "./render.ts";

type Policy = components["schemas"]["Policy"];
type Grant = components["schemas"]["GrantRecord"];
type WhatIfRequest = components["schemas"]["WhatIfRequest"];
type Decision = components["schemas"]["WhatIfDecision"];

const protocols = ["tcp", "udp"] as const satisfies readonly WhatIfRequest["protocol"][];
const bearers = ["cellular", "private-5g", "wifi", "satellite"] as const satisfies readonly WhatIfRequest["bearer"][];

const destinations = (list: readonly object[]) =>
  list
    .map((d) =>
      Object.entries(d)
        .map(([k, v]) => `${k}=${cell(v)}`)
        .join(" "),
    )
    .join("; ");

const policyColumns: readonly Column<Policy>[] = [
  ["id", (p) => p.id],
  ["name", (p) => p.name],
  ["effect", (p) => p.effect],
  ["selector", (p) => p.selector],
  ["destinations", (p) => destinations(p.destinations)],
  ["revision", (p) => p.revision],
];

const grantColumns: readonly Column<Grant>[] = [
  ["id", (g) => g.id],
  ["status", (g) => g.status],
  ["principal", (g) => g.principal],
  ["target", (g) => ("deviceId" in g.target ? g.target.deviceId : cell(g.target.selector))],
  ["notBefore", (g) => g.notBefore],
  ["notAfter", (g) => g.notAfter],
];

const showPolicy = (policy: Policy) =>
  details({ ...policy, destinations: destinations(policy.destinations) }, [
    "id",
    "name",
    "effect",
    "selector",
    "destinations",
    "conditions",
    "revision",
    "updatedAt",
  ]);
const showGrant = (grant: Grant) =>
  details({ ...grant, destinations: destinations(grant.destinations) }, [
    "id",
    "status",
    "principal",
    "target",
    "destinations",
    "notBefore",
    "notAfter",
    "sessionRecording",
    "revokedAt",
    "revokedReason",
    "revision",
  ]);
const showDecision = (d: Decision) =>
  `${d.allow ? "ALLOW" : "DENY"}  ${d.reason}${d.ruleId ? ` (rule ${d.ruleId})` : ""}${d.grantId ? ` (grant ${d.grantId})` : ""}${d.sessionRecording ? " [record session]" : ""}\n` +
  `${d.explanation}\n${details(d, ["deviceId", "deviceState", "at", "policyVersion"])}`;

const fileOption = {
  file: { type: "string", value: "<file.json>", description: "the JSON body (- for stdin; required)" },
} as const satisfies Record<string, OptionSpec>;
export const ifMatchOption = {
  "if-match": { type: "string", value: "<etag>", description: "only if still at this ETag (default: the current one)" },
} as const satisfies Record<string, OptionSpec>;

/** The JSON in `--file` (or stdin for `-`); the API validates its shape. */
export async function jsonFile<T>(ctx: Context): Promise<T> {
  const name = ctx.need("file");
  let text: string;
  try {
    text = name === "-" ? await readStdin() : await readFile(name, "utf8");
  } catch (error) {
    throw ctx.usage(`cannot read ${name}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw ctx.usage(`${name} is not JSON: ${(error as Error).message}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString("utf8");
}

const policyEtag = (ctx: Context, id: string) =>
  etagFor(ctx, async () => (await ctx.client.getWithEtag("/v1/policies/{id}", { params: { path: { id } } })).etag);

const deviceRefOptions = {
  device: { type: "string", value: "<id>", description: "the device id" },
  imsi: { type: "string", value: "<digits>", description: "or its IMSI" },
  eid: { type: "string", value: "<digits>", description: "or its EID" },
  iccid: { type: "string", value: "<digits>", description: "or an ICCID" },
  imei: { type: "string", value: "<digits>", description: "or its IMEI" },
  msisdn: { type: "string", value: "<+number>", description: "or its MSISDN" },
} as const satisfies Record<string, OptionSpec>;

async function decide(ctx: Context) {
  const device = Object.fromEntries(
    Object.keys(deviceRefOptions).flatMap((name) => (ctx.opt(name) ? [[name === "device" ? "deviceId" : name, ctx.opt(name)]] : [])),
  ) as WhatIfRequest["device"];
  if (Object.keys(device).length === 0) throw ctx.usage(`name the device with one of --${Object.keys(deviceRefOptions).join(", --")}`);
  const destination = { ip: ctx.opt("dest-ip"), fqdn: ctx.opt("dest-fqdn") };
  if (!destination.ip && !destination.fqdn) throw ctx.usage("give --dest-ip, --dest-fqdn or both");
  const given = ctx.need("port").trim();
  const port = /^\d+$/.test(given) ? Number(given) : Number.NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw ctx.usage(`--port must be 0-65535, not '${ctx.opt("port")}'`);
  const body: WhatIfRequest = {
    device,
    destination,
    port,
    protocol: choiceOf(ctx, "protocol", protocols) ?? "tcp",
    bearer: choiceOf(ctx, "bearer", bearers) ?? "cellular",
    country: ctx.opt("country")?.toUpperCase(),
    at: ctx.opt("at"),
    principal: ctx.opt("principal"),
  };
  ctx.print(await ctx.client.post("/v1/decisions/evaluate", { body }), showDecision);
}

export const policyCommands: Command[] = [
  listCommand({ group: "policies", summary: "List the tenant's policy rules", path: "/v1/policies", columns: policyColumns }),
  {
    group: "policies",
    name: "get",
    args: ["id"],
    summary: "Show a policy rule",
    run: async (ctx) => ctx.print(await ctx.client.get("/v1/policies/{id}", { params: { path: { id: ctx.arg("id") } } }), showPolicy),
  },
  {
    group: "policies",
    name: "create",
    summary: "Create a policy rule from a JSON file ({ name, selector, destinations, conditions?, effect })",
    options: fileOption,
    run: async (ctx) => {
      const body = await jsonFile<components["schemas"]["PolicyInput"]>(ctx);
      ctx.print(await ctx.client.idempotentPost("/v1/policies", { body }), showPolicy);
    },
  },
  {
    group: "policies",
    name: "replace",
    args: ["id"],
    summary: "Replace a policy rule whole from a JSON file",
    options: { ...fileOption, ...ifMatchOption },
    run: async (ctx) => {
      const id = ctx.arg("id");
      const body = await jsonFile<components["schemas"]["PolicyInput"]>(ctx);
      const etag = await policyEtag(ctx, id);
      ctx.print(await ctx.client.put("/v1/policies/{id}", { params: { path: { id }, header: { "if-match": etag } }, body }), showPolicy);
    },
  },
  {
    group: "policies",
    name: "delete",
    args: ["id"],
    summary: "Delete a policy rule",
    options: ifMatchOption,
    run: async (ctx) => {
      const id = ctx.arg("id");
      await ctx.client.delete("/v1/policies/{id}", { params: { path: { id }, header: { "if-match": await policyEtag(ctx, id) } } });
      ctx.print({ id, deleted: true }, () => `deleted ${id}`);
    },
  },
  listCommand({
    group: "grants",
    summary: "List the tenant's grants (expired and revoked ones included)",
    path: "/v1/grants",
    columns: grantColumns,
  }),
  {
    group: "grants",
    name: "get",
    args: ["id"],
    summary: "Show a grant",
    run: async (ctx) => ctx.print(await ctx.client.get("/v1/grants/{id}", { params: { path: { id: ctx.arg("id") } } }), showGrant),
  },
  {
    group: "grants",
    name: "create",
    summary: "Grant a third party time-limited access from a JSON file ({ principal, target, destinations, notBefore, notAfter })",
    options: fileOption,
    run: async (ctx) => {
      const body = await jsonFile<components["schemas"]["GrantInput"]>(ctx);
      ctx.print(await ctx.client.idempotentPost("/v1/grants", { body }), showGrant);
    },
  },
  {
    group: "grants",
    name: "revoke",
    args: ["id"],
    summary: "End a grant now",
    options: { reason: { type: "string", value: "<text>", description: "why (kept with the grant)" } },
    run: async (ctx) => {
      const reason = ctx.opt("reason");
      const grant = await ctx.client.post("/v1/grants/{id}/revoke", {
        params: { path: { id: ctx.arg("id") } },
        ...(reason ? { body: { reason } } : {}),
      });
      ctx.print(grant, showGrant);
    },
  },
  {
    group: "enforcement",
    name: "get",
    summary: "Show the enforcement settings: quarantine destinations and fail mode",
    run: async (ctx) =>
      ctx.print(await ctx.client.get("/v1/enforcement"), (e) =>
        details({ ...e, quarantineDestinations: destinations(e.quarantineDestinations ?? []) }, [
          "failMode",
          "quarantineDestinations",
          "revision",
          "updatedAt",
        ]),
      ),
  },
  {
    group: "decide",
    summary: "What-if: how the current policy decides a device's connection",
    options: {
      ...deviceRefOptions,
      "dest-ip": { type: "string", value: "<address>", description: "destination IP" },
      "dest-fqdn": { type: "string", value: "<name>", description: "destination host name" },
      port: { type: "string", value: "<port>", description: "destination port (required)" },
      protocol: { type: "string", value: protocols.join("|"), description: "default tcp" },
      bearer: { type: "string", value: bearers.join("|"), description: "default cellular" },
      country: { type: "string", value: "<CC>", description: "where the device is (ISO 3166-1 alpha-2)" },
      at: { type: "string", value: "<iso-time>", description: "decide for this instant (default now)" },
      principal: { type: "string", value: "<who>", description: "a third party connecting under a grant" },
    },
    run: decide,
  },
];
