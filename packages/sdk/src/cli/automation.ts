import type { components } from "../openapi.d.ts";
import { etagFor, type Command } from "./command.ts";
import { listCommand } from "./list.ts";
import { ifMatchOption, jsonFile } from "./policy.ts";
import { cell, details, table, type Column } from "./render.ts";

type Rule = components["schemas"]["AutomationRule"];
type Webhook = components["schemas"]["Webhook"];
type Delivery = components["schemas"]["WebhookDelivery"];
type Incident = components["schemas"]["Incident"];

const fileOption = { file: { type: "string", value: "<file.json>", description: "the JSON body (- for stdin; required)" } } as const;

const ruleColumns: readonly Column<Rule>[] = [
  ["id", (r) => r.id],
  ["name", (r) => r.name],
  ["enabled", (r) => r.enabled],
  ["dryRun", (r) => r.dryRun],
  ["pattern", (r) => cell(r.pattern)],
  ["actions", (r) => r.actions.map((a) => a.type).join(",")],
  ["role", (r) => r.role],
  ["problem", (r) => cell(r.problem)],
];
const webhookColumns: readonly Column<Webhook>[] = [
  ["id", (w) => w.id],
  ["url", (w) => w.url],
  ["signing", (w) => w.signing],
  ["enabled", (w) => w.enabled],
  ["pattern", (w) => cell(w.pattern)],
  ["role", (w) => cell(w.role)],
  ["problem", (w) => cell(w.problem)],
];
const deliveryColumns: readonly Column<Delivery>[] = [
  ["id", (d) => d.id],
  ["status", (d) => d.status],
  ["eventType", (d) => d.eventType],
  ["attempts", (d) => d.attemptCount],
  ["last", (d) => cell(d.attempts.at(-1)?.status ?? d.attempts.at(-1)?.error)],
  ["nextAt", (d) => d.nextAt],
];
const incidentColumns: readonly Column<Incident>[] = [
  ["id", (i) => i.id],
  ["status", (i) => i.status],
  ["severity", (i) => i.severity],
  ["deviceId", (i) => i.deviceId],
  ["openedAt", (i) => i.openedAt],
  ["openedBy", (i) => i.openedBy],
];
const showRule = (rule: Rule) =>
  details({ ...rule, actions: cell(rule.actions) }, ["id", "name", "enabled", "dryRun", "pattern", "actions", "rateLimit", "revision"]);

const ruleToggle = (name: string, summary: string, changes: Partial<Rule>): Command => ({
  group: "rules",
  name,
  args: ["id"],
  summary,
  run: async (ctx) => {
    const id = ctx.arg("id");
    const { etag } = await ctx.client.getWithEtag("/v1/automation/rules/{id}", { params: { path: { id } } });
    const rule = await ctx.client.patch("/v1/automation/rules/{id}", {
      params: { path: { id }, header: { "if-match": etag ?? "*" } },
      body: changes,
    });
    ctx.print(rule, showRule);
  },
});

export const automationCommands: Command[] = [
  listCommand({ group: "rules", summary: "List the tenant's automation rules", path: "/v1/automation/rules", columns: ruleColumns }),
  {
    group: "rules",
    name: "get",
    args: ["id"],
    summary: "Show an automation rule",
    run: async (ctx) => ctx.print(await ctx.client.get("/v1/automation/rules/{id}", { params: { path: { id: ctx.arg("id") } } }), showRule),
  },
  {
    group: "rules",
    name: "create",
    summary: "Create an automation rule from a JSON file ({ name, pattern, actions, dryRun?, rateLimit? })",
    options: fileOption,
    run: async (ctx) => {
      const body = await jsonFile<components["schemas"]["AutomationRuleInput"]>(ctx);
      ctx.print(await ctx.client.idempotentPost("/v1/automation/rules", { body }), showRule);
    },
  },
  ruleToggle("enable", "Let a rule act", { enabled: true, dryRun: false }),
  ruleToggle("dry-run", "Make a rule record what it would do, and do nothing", { dryRun: true }),
  ruleToggle("disable", "Stop a rule", { enabled: false }),
  {
    group: "rules",
    name: "delete",
    args: ["id"],
    summary: "Remove an automation rule",
    options: ifMatchOption,
    run: async (ctx) => {
      const id = ctx.arg("id");
      const etag = await etagFor(
        ctx,
        async () => (await ctx.client.getWithEtag("/v1/automation/rules/{id}", { params: { path: { id } } })).etag,
      );
      ctx.print(
        await ctx.client.delete("/v1/automation/rules/{id}", { params: { path: { id }, header: { "if-match": etag } } }),
        (r) => `deleted ${r.id}`,
      );
    },
  },
  listCommand({ group: "webhooks", summary: "List the tenant's webhook subscriptions", path: "/v1/webhooks", columns: webhookColumns }),
  {
    group: "webhooks",
    name: "create",
    summary: "Subscribe a URL ({ url, pattern, signing: v1|v1a }); a v1 secret is printed once",
    options: fileOption,
    run: async (ctx) => {
      const body = await jsonFile<components["schemas"]["WebhookInput"]>(ctx);
      const webhook = await ctx.client.idempotentPost("/v1/webhooks", { body });
      ctx.print(webhook, (w) => details(w, ["id", "url", "signing", "pattern", "secret", "publicKey"]));
    },
  },
  {
    group: "webhooks",
    name: "get",
    args: ["id"],
    summary: "Show a webhook subscription (a disabled one says why)",
    run: async (ctx) =>
      ctx.print(await ctx.client.get("/v1/webhooks/{id}", { params: { path: { id: ctx.arg("id") } } }), (w) =>
        details(w, ["id", "url", "signing", "enabled", "disabledReason", "pattern", "publicKey", "revision"]),
      ),
  },
  listCommand({
    group: "webhooks",
    name: "deliveries",
    idArg: "id",
    summary: "The delivery log of a subscription, newest first",
    path: "/v1/webhooks/{id}/deliveries",
    columns: deliveryColumns,
  }),
  {
    group: "webhooks",
    name: "replay",
    args: ["id", "delivery"],
    summary: "Send a delivery again now (same webhook-id)",
    run: async (ctx) =>
      ctx.print(
        await ctx.client.post("/v1/webhooks/{id}/deliveries/{deliveryId}/replay", {
          params: { path: { id: ctx.arg("id"), deliveryId: ctx.arg("delivery") } },
        }),
        (d) => table([d], deliveryColumns),
      ),
  },
  {
    group: "webhooks",
    name: "delete",
    args: ["id"],
    summary: "Remove a webhook subscription",
    options: ifMatchOption,
    run: async (ctx) => {
      const id = ctx.arg("id");
      const etag = await etagFor(ctx, async () => (await ctx.client.getWithEtag("/v1/webhooks/{id}", { params: { path: { id } } })).etag);
      ctx.print(
        await ctx.client.delete("/v1/webhooks/{id}", { params: { path: { id }, header: { "if-match": etag } } }),
        (r) => `deleted ${r.id}`,
      );
    },
  },
  listCommand({ group: "incidents", summary: "List the tenant's incidents", path: "/v1/incidents", columns: incidentColumns }),
  {
    group: "incidents",
    name: "get",
    args: ["id"],
    summary: "Show an incident with the device's timeline, its anomalies and the actions taken",
    run: async (ctx) =>
      ctx.print(await ctx.client.get("/v1/incidents/{id}", { params: { path: { id: ctx.arg("id") } } }), (r) =>
        [
          details(r.incident, ["id", "status", "severity", "deviceId", "openedAt", "openedBy"]),
          "",
          table(r.timeline, [
            ["time", (e) => e.time],
            ["type", (e) => e.type],
            ["actor", (e) => e.actor],
          ]),
        ].join("\n"),
      ),
  },
  {
    group: "incidents",
    name: "nis2",
    args: ["id"],
    summary: "NIS2 Art. 23 drafts: early warning (24 h), notification (72 h), final report",
    run: async (ctx) =>
      ctx.print(await ctx.client.get("/v1/incidents/{id}/nis2", { params: { path: { id: ctx.arg("id") } } }), (d) =>
        JSON.stringify(d, null, 2),
      ),
  },
  {
    group: "incidents",
    name: "close",
    args: ["id"],
    summary: "Close an incident with a summary",
    options: { summary: { type: "string", value: "<text>", description: "what happened and what was done (required)" } },
    run: async (ctx) =>
      ctx.print(
        await ctx.client.post("/v1/incidents/{id}/close", {
          params: { path: { id: ctx.arg("id") } },
          body: { summary: ctx.need("summary") },
        }),
        (i) => details(i, ["id", "status", "closedAt", "summary"]),
      ),
  },
];
