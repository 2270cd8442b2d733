import type { components } from "../openapi.d.ts";
import { choiceOf, type Command, type Context } from "./command.ts";
import { listCommand } from "./list.ts";
import { details, type Column } from "./render.ts";

type Source = components["schemas"]["Source"];
type Parked = components["schemas"]["ParkedEvent"];
type BusDeadLetter = components["schemas"]["BusDeadLetter"];
type WithCredentials = components["schemas"]["SourceWithCredentials"];

const formats = ["simroot", "camara", "nef", "datastreamer", "supersim", "eim"] as const satisfies readonly Source["format"][];
const bearers = ["cellular", "private-5g", "wifi", "satellite"] as const satisfies readonly NonNullable<Source["defaultBearer"]>[];

const sourceColumns: readonly Column<Source>[] = [
  ["id", (s) => s.id],
  ["name", (s) => s.name],
  ["format", (s) => s.format],
  ["ingestPath", (s) => s.ingestPath],
  ["credentialsRotatedAt", (s) => s.credentialsRotatedAt],
];

const busDeadLetterColumns: readonly Column<BusDeadLetter>[] = [
  ["id", (d) => d.id],
  ["deadAt", (d) => d.deadAt],
  ["rule", (d) => d.rule],
  ["eventType", (d) => d.eventType],
  ["subject", (d) => d.subject],
  ["reason", (d) => d.reason],
];

const parkedColumns: readonly Column<Parked>[] = [
  ["id", (p) => p.id],
  ["parkedAt", (p) => p.parkedAt],
  ["type", (p) => p.type],
  ["subject", (p) => p.subject],
  ["sourceId", (p) => p.sourceId],
  ["reason", (p) => p.reason],
];

const showSource = (source: Source) =>
  details(source, ["id", "name", "format", "ingestPath", "defaultBearer", "createdAt", "credentialsRotatedAt"]);

const showWithCredentials = (ctx: Context) => (created: WithCredentials) => {
  ctx.note("Give these credentials to the sender now: they are not shown again.");
  return `${showSource(created.source)}\n\ncredentials\n${details(created.credentials)}`;
};

/**
 * A Super SIM source's secrets, given by the operator (the API keeps no copy it could carry over a rotation): the Twilio
 * account's auth token, which signs its webhooks, and the SharedKey secret of webhooks signed that way.
 */
const twilioOptions = {
  "twilio-auth-token": {
    type: "string",
    value: "<token>",
    description:
      "supersim: the Twilio account's auth token, which signs its webhooks (required; or SIMROOT_TWILIO_AUTH_TOKEN, kept off the command line)",
  },
  "twilio-shared-key-secret": {
    type: "string",
    value: "<secret>",
    description: "supersim: the SharedKey secret of webhooks signed with one (or SIMROOT_TWILIO_SHARED_KEY_SECRET)",
  },
} as const;

/** The credentials a command sends for a Super SIM source (options first, then the environment); none for another format. */
const twilioCredentials = (ctx: Context, format: string) => {
  if (format !== "supersim") return {};
  const twilioAuthToken = ctx.opt("twilio-auth-token") ?? process.env.SIMROOT_TWILIO_AUTH_TOKEN;
  const twilioSharedKeySecret = ctx.opt("twilio-shared-key-secret") ?? process.env.SIMROOT_TWILIO_SHARED_KEY_SECRET;
  const credentials = { ...(twilioAuthToken ? { twilioAuthToken } : {}), ...(twilioSharedKeySecret ? { twilioSharedKeySecret } : {}) };
  return Object.keys(credentials).length === 0 ? {} : { credentials };
};

export const ingestCommands: Command[] = [
  {
    group: "sources",
    name: "create",
    summary: "Create an ingestion source for an operator core or eSIM manager; its credentials are printed once",
    options: {
      name: { type: "string", value: "<name>", description: "the sender's name (required)" },
      format: { type: "string", value: formats.join("|"), description: "the webhook format it sends (required)" },
      "default-bearer": { type: "string", value: bearers.join("|"), description: "the bearer its cellular reports stand for" },
      ...twilioOptions,
    },
    run: async (ctx) => {
      const format = choiceOf(ctx, "format", formats, true)!;
      const body = {
        name: ctx.need("name"),
        format,
        defaultBearer: choiceOf(ctx, "default-bearer", bearers, false),
        ...twilioCredentials(ctx, format),
      };
      ctx.print(await ctx.client.idempotentPost("/v1/sources", { body }), showWithCredentials(ctx));
    },
  },
  listCommand({ group: "sources", summary: "List the tenant's ingestion sources", path: "/v1/sources", columns: sourceColumns }),
  {
    group: "sources",
    name: "get",
    args: ["id"],
    summary: "Show an ingestion source",
    run: async (ctx) => ctx.print(await ctx.client.get("/v1/sources/{id}", { params: { path: { id: ctx.arg("id") } } }), showSource),
  },
  {
    group: "sources",
    name: "rotate",
    args: ["id"],
    summary: "Replace a source's credentials (the old ones stop working at once); printed once",
    options: twilioOptions,
    run: async (ctx) => {
      const path = { id: ctx.arg("id") };
      // Given secrets are given again at a rotation: the source's format says which.
      const { format } = await ctx.client.get("/v1/sources/{id}", { params: { path } });
      ctx.print(
        await ctx.client.post("/v1/sources/{id}/rotate", { params: { path }, body: twilioCredentials(ctx, format) }),
        showWithCredentials(ctx),
      );
    },
  },
  listCommand({
    group: "dead-letters",
    summary: "Accepted events that could not be applied yet, with the reason",
    path: "/v1/dead-letters",
    columns: parkedColumns,
  }),
  {
    group: "dead-letters",
    name: "replay",
    args: ["id"],
    summary: "Send a parked event to the applier again",
    run: async (ctx) =>
      ctx.print(await ctx.client.post("/v1/dead-letters/{id}/replay", { params: { path: { id: ctx.arg("id") } } }), (r) =>
        r.replayed ? `${r.id} queued again` : `${r.id} was not replayed`,
      ),
  },
  listCommand({
    group: "bus",
    name: "dead-letters",
    summary: "Events a consumer did not take after its retries, with the rule and the reason",
    path: "/v1/bus/dead-letters",
    columns: busDeadLetterColumns,
  }),
  {
    group: "bus",
    name: "redrive",
    args: ["id"],
    summary: "Hand a dead letter back to its consumer (that rule only); audited",
    run: async (ctx) =>
      ctx.print(await ctx.client.post("/v1/bus/dead-letters/{id}/redrive", { params: { path: { id: ctx.arg("id") } } }), (r) =>
        r.redriven ? `${r.id} handed back to ${r.rule}` : `${r.id} was not redriven`,
      ),
  },
];
