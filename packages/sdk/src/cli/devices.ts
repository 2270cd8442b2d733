import type { components } from "../openapi.d.ts";
import { booleanOf, labelsOf, type Command, type Context, type OptionSpec } from "./command.ts";
import { listCommand } from "./list.ts";
import { details, table, type Column } from "./render.ts";

type Device = components["schemas"]["Device"];
type TimelineEntry = components["schemas"]["TimelineEntry"];

export const deviceColumns: readonly Column<Device>[] = [
  ["id", (d) => d.id],
  ["state", (d) => d.state],
  ["name", (d) => d.name],
  ["imsi", (d) => d.imsi],
  ["iccids", (d) => d.iccids],
  ["eid", (d) => d.eid],
  ["labels", (d) => d.labels],
];

export const showDevice = (device: Device) =>
  details({ ...device, ip: Object.values(device.identity.sessions).flatMap((session) => [session?.ipv4, session?.ipv6].filter(Boolean)) }, [
    "id",
    "name",
    "state",
    "eid",
    "iccids",
    "imsi",
    "imei",
    "msisdn",
    "labels",
    "imeiLock",
    "ip",
    "createdAt",
    "updatedAt",
    "revision",
  ]);

const identifierOptions = {
  eid: { type: "string", value: "<32 digits>", description: "eUICC id" },
  iccid: { type: "string", value: "<digits>", description: "SIM profile id" },
  imsi: { type: "string", value: "<digits>", description: "subscriber identity" },
  imei: { type: "string", value: "<digits>", description: "equipment identity" },
  msisdn: { type: "string", value: "<+number>", description: "phone number" },
} as const satisfies Record<string, OptionSpec>;

const lookupOptions = {
  ...identifierOptions,
  nai: { type: "string", value: "<nai>", description: "EAP-SIM/AKA network access identifier" },
  supi: { type: "string", value: "<supi>", description: "5G subscription permanent identifier" },
  ip: { type: "string", value: "<address>", description: "the device's current IP in the tenant's APN/DNN" },
} as const satisfies Record<string, OptionSpec>;

async function register(ctx: Context) {
  const iccids = ctx.many("iccid");
  const body = {
    name: ctx.opt("name"),
    eid: ctx.opt("eid"),
    imsi: ctx.opt("imsi"),
    imei: ctx.opt("imei"),
    msisdn: ctx.opt("msisdn"),
    iccids: iccids.length > 0 ? iccids : undefined,
    labels: labelsOf(ctx),
    imeiLock: booleanOf(ctx, "imei-lock"),
  };
  if (!body.eid && !body.imsi && !body.iccids) throw ctx.usage("a device needs a SIM identity: --eid, --iccid or --imsi");
  const device = await ctx.client.idempotentPost("/v1/devices", { body, idempotencyKey: ctx.opt("idempotency-key") });
  ctx.print(device, showDevice);
}

async function lookup(ctx: Context) {
  const query = Object.fromEntries(Object.keys(lookupOptions).flatMap((name) => (ctx.opt(name) ? [[name, ctx.opt(name)]] : [])));
  if (Object.keys(query).length === 0) throw ctx.usage(`name the device by one of --${Object.keys(lookupOptions).join(", --")}`);
  ctx.print(await ctx.client.get("/v1/devices/lookup", { params: { query } }), showDevice);
}

const actions = {
  suspend: "Suspend a device (enforcement points deny its traffic until reinstated)",
  quarantine: "Quarantine a device (only the tenant's quarantine destinations stay reachable)",
  reinstate: "Reinstate a suspended or quarantined device",
  revoke: "Revoke a device for good (terminal: register the SIM again if it returns)",
} as const;

const actionCommands: Command[] = Object.entries(actions).map(([action, summary]) => ({
  group: "devices",
  name: action,
  args: ["id"],
  summary,
  options: { reason: { type: "string", value: "<text>", description: "why (kept in the audit trail; required)" } },
  run: async (ctx) => {
    const result = await ctx.client.post("/v1/devices/{id}/{action}", {
      params: { path: { id: ctx.arg("id"), action: action as keyof typeof actions } },
      body: { reason: ctx.need("reason") },
    });
    ctx.print(result, (r) => `${r.outcome}: ${r.device.id} is ${r.device.state}`);
  },
}));

const timelineColumns: readonly Column<TimelineEntry>[] = [
  ["seq", (e) => e.seq],
  ["time", (e) => e.time],
  ["type", (e) => e.type],
  ["actor", (e) => e.actor],
  ["data", (e) => e.data],
];

export const deviceCommands: Command[] = [
  listCommand({ group: "devices", summary: "List the tenant's devices, oldest first", path: "/v1/devices", columns: deviceColumns }),
  {
    group: "devices",
    name: "get",
    args: ["id"],
    summary: "Show a device",
    run: async (ctx) => ctx.print(await ctx.client.get("/v1/devices/{id}", { params: { path: { id: ctx.arg("id") } } }), showDevice),
  },
  {
    group: "devices",
    name: "register",
    summary: "Register a device by its SIM identity (--eid, --iccid or --imsi)",
    options: {
      ...identifierOptions,
      iccid: { ...identifierOptions.iccid, multiple: true, description: "SIM profile id (repeat for several)" },
      name: { type: "string", value: "<name>", description: "a name for people" },
      label: { type: "string", multiple: true, value: "<key=value>", description: "a label policies select on (repeatable)" },
      "imei-lock": { type: "string", value: "true|false", description: "quarantine on IMEI change (default: the tenant setting)" },
      "idempotency-key": { type: "string", value: "<key>", description: "retry-safe key (a new one by default)" },
    },
    run: register,
  },
  { group: "devices", name: "lookup", summary: "Find a device by any identifier", options: lookupOptions, run: lookup },
  ...actionCommands,
  listCommand({
    group: "devices",
    name: "timeline",
    idArg: "id",
    summary: "A device's events, oldest first",
    path: "/v1/devices/{id}/timeline",
    columns: timelineColumns,
  }),
  {
    group: "devices",
    name: "sessions",
    args: ["id"],
    summary: "A device's active sessions, one per bearer",
    run: async (ctx) =>
      ctx.print(await ctx.client.get("/v1/devices/{id}/sessions", { params: { path: { id: ctx.arg("id") } } }), (r) =>
        table(r.items, [
          ["bearer", (s) => s.bearer],
          ["ipv4", (s) => s.ipv4],
          ["ipv6", (s) => s.ipv6],
          ["rat", (s) => s.rat],
          ["since", (s) => s.since],
        ]),
      ),
  },
];
