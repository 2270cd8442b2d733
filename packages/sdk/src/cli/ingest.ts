import { readFile } from "node:fs/promises";
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

/**
 * What a simroot or eim sender brings to its source: the Ed25519 public key its `v1a` signatures are checked with (the
 * source then holds no secret), and the certificates eUICC notifications must chain to. Both are public, so they may be
 * given on the command line; a key or certificates in a PEM file are read from it.
 */
const senderOptions = {
  "webhook-public-key": {
    type: "string",
    value: "<whpk_...|file.pem>",
    description:
      "simroot: the sender's Ed25519 public key (whpk_<base64> or a PEM file); the source then accepts only v1a signatures and holds no secret",
  },
  "trust-anchor": {
    type: "string",
    multiple: true,
    value: "<file.pem>",
    description:
      "eim: a PEM file of the GSMA CI or EUM certificates eUICC notifications must chain to (repeat for several; kept at a rotation unless given)",
  },
} as const;

async function readOption(ctx: Context, name: string, file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    throw ctx.usage(`--${name}: cannot read ${file}: ${(error as Error).message}`);
  }
}

/** The credentials `senderOptions` give, for the format they belong to (another format's are a usage error). */
async function senderCredentials(ctx: Context, format: string): Promise<{ webhookPublicKey?: string; trustAnchors?: string[] }> {
  const key = ctx.opt("webhook-public-key");
  const anchors = ctx.many("trust-anchor");
  if (key !== undefined && format !== "simroot") throw ctx.usage(`--webhook-public-key is for format simroot, not ${format}`);
  if (anchors.length > 0 && format !== "eim") throw ctx.usage(`--trust-anchor is for format eim, not ${format}`);
  return {
    ...(key === undefined ? {} : { webhookPublicKey: key.startsWith("whpk_") ? key : await readOption(ctx, "webhook-public-key", key) }),
    ...(anchors.length === 0 ? {} : { trustAnchors: await Promise.all(anchors.map((file) => readOption(ctx, "trust-anchor", file))) }),
  };
}

/** Every credential a command sends: the Twilio secrets of a Super SIM source, the sender's public key or anchors. */
async function givenCredentials(ctx: Context, format: string) {
  const credentials = { ...twilioCredentials(ctx, format).credentials, ...(await senderCredentials(ctx, format)) };
  return Object.keys(credentials).length === 0 ? {} : { credentials };
}

export const ingestCommands: Command[] = [
  {
    group: "sources",
    name: "create",
    summary: "Create an ingestion source for an operator core or eSIM manager; its credentials are printed once",
    options: {
      name: { type: "string", value: "<name>", description: "the sender's name (required)" },
      format: { type: "string", value: formats.join("|"), description: "the webhook format it sends (required)" },
      "default-bearer": { type: "string", value: bearers.join("|"), description: "the bearer its cellular reports stand for" },
      "max-clock-skew": {
        type: "string",
        value: "<seconds>",
        description:
          "how far into the future a reported time may lie (0 to 86400; later ones are ordered at the receive time; default 300)",
      },
      ...twilioOptions,
      ...senderOptions,
    },
    run: async (ctx) => {
      const format = choiceOf(ctx, "format", formats, true)!;
      const skew = ctx.opt("max-clock-skew");
      const maxClockSkewSeconds = skew === undefined ? undefined : Number(skew);
      if (maxClockSkewSeconds !== undefined && !(Number.isInteger(maxClockSkewSeconds) && maxClockSkewSeconds >= 0))
        throw ctx.usage(`--max-clock-skew must be a whole number of seconds, not ${skew}`);
      const body = {
        name: ctx.need("name"),
        format,
        defaultBearer: choiceOf(ctx, "default-bearer", bearers, false),
        ...(maxClockSkewSeconds === undefined ? {} : { maxClockSkewSeconds }),
        ...(await givenCredentials(ctx, format)),
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
    options: { ...twilioOptions, ...senderOptions },
    run: async (ctx) => {
      const path = { id: ctx.arg("id") };
      // Given secrets are given again at a rotation, and a sender's new public key: the source's format says which.
      const { format } = await ctx.client.get("/v1/sources/{id}", { params: { path } });
      ctx.print(
        await ctx.client.post("/v1/sources/{id}/rotate", { params: { path }, body: await givenCredentials(ctx, format) }),
        showWithCredentials(ctx),
      );
    },
  },
  {
    group: "sources",
    name: "delete",
    args: ["id"],
    summary: "Delete a source: its sender is refused from then on, its credentials erased",
    run: async (ctx) =>
      ctx.print(
        await ctx.client.delete("/v1/sources/{id}", { params: { path: { id: ctx.arg("id") } } }),
        (r) => `deleted ${r.id} at ${r.deletedAt}`,
      ),
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
