import type { components } from "../openapi.d.ts";
import { booleanOf, choiceOf, etagFor, type Command, type Context } from "./command.ts";
import { listCommand } from "./list.ts";
import { details, type Column } from "./render.ts";

type ApiKey = components["schemas"]["ApiKey"];
type Tenant = components["schemas"]["Tenant"];
type TenantSettings = NonNullable<Tenant["settings"]>;

// The roles a key can be created with (`ingest`, which no route admits, is only read on keys made before).
const roles = ["admin", "operator", "viewer", "pep"] as const satisfies readonly ApiKey["role"][];
const failModes = ["closed", "open"] as const satisfies readonly NonNullable<TenantSettings["failMode"]>[];

const keyColumns: readonly Column<ApiKey>[] = [
  ["keyId", (k) => k.keyId],
  ["name", (k) => k.name],
  ["role", (k) => k.role],
  ["selector", (k) => k.selector],
  ["createdAt", (k) => k.createdAt],
  ["rotatedAt", (k) => k.rotatedAt],
  ["revokedAt", (k) => k.revokedAt],
];

/** A token shown once: on stdout (so it can be captured) with a warning on stderr. */
function showToken(ctx: Context, token: string) {
  ctx.note("Store this token now: it is not shown again.");
  return `token  ${token}`;
}

const showKeyWithToken = (ctx: Context) => (created: { key: ApiKey; token: string }) =>
  `${details(created.key, ["keyId", "name", "role", "selector", "createdAt", "rotatedAt"])}\n${showToken(ctx, created.token)}`;

const showTenant = (tenant: Tenant) =>
  details({ ...tenant, ...tenant.settings }, [
    "id",
    "name",
    "platform",
    "imeiLock",
    "allowedCountries",
    "failMode",
    "createdAt",
    "revision",
  ]);

async function updateSettings(ctx: Context) {
  const countries = ctx.opt("allowed-countries");
  const changes: Partial<TenantSettings> = {
    imeiLock: booleanOf(ctx, "imei-lock"),
    allowedCountries:
      countries === undefined
        ? undefined
        : countries
            .split(",")
            .map((c) => c.trim().toUpperCase())
            .filter(Boolean),
    failMode: choiceOf(ctx, "fail-mode", failModes),
  };
  if (Object.values(changes).every((value) => value === undefined)) {
    throw ctx.usage("change at least one of --imei-lock, --allowed-countries, --fail-mode");
  }
  // If-Match: the ETag given, or the one of the tenant as it is now (read-modify-write).
  const etag = await etagFor(ctx, async () => (await ctx.client.getWithEtag("/v1/tenant")).etag);
  const tenant = await ctx.client.patch("/v1/tenant/settings", { params: { header: { "if-match": etag } }, body: changes });
  ctx.print(tenant, showTenant);
}

export const accessCommands: Command[] = [
  {
    group: "keys",
    name: "create",
    summary: "Create an API key; its token is printed once",
    options: {
      name: { type: "string", value: "<name>", description: "what the key is for (required)" },
      role: { type: "string", value: roles.join("|"), description: "what the key may do (required)" },
      selector: {
        type: "string",
        value: "<key=value[,key=value]>",
        description: "pep keys: bind the key to this selector's view of the feed (a PEP for one site)",
      },
    },
    run: async (ctx) => {
      const selector = ctx.opt("selector");
      const body = { name: ctx.need("name"), role: choiceOf(ctx, "role", roles, true)!, ...(selector === undefined ? {} : { selector }) };
      const created = await ctx.client.idempotentPost("/v1/keys", { body });
      ctx.print(created, showKeyWithToken(ctx));
    },
  },
  listCommand({ group: "keys", summary: "List the tenant's API keys (never their secrets)", path: "/v1/keys", columns: keyColumns }),
  {
    group: "keys",
    name: "rotate",
    args: ["id"],
    summary:
      "Give a key a new secret (the old one stops working at once on this instance, within 1 s on the others); the token is printed once",
    run: async (ctx) =>
      ctx.print(await ctx.client.post("/v1/keys/{id}/rotate", { params: { path: { id: ctx.arg("id") } } }), showKeyWithToken(ctx)),
  },
  {
    group: "keys",
    name: "revoke",
    args: ["id"],
    summary: "Revoke a key",
    run: async (ctx) =>
      ctx.print(await ctx.client.delete("/v1/keys/{id}", { params: { path: { id: ctx.arg("id") } } }), (key) =>
        details(key, ["keyId", "name", "role", "revokedAt"]),
      ),
  },
  {
    group: "tenant",
    name: "get",
    summary: "Show your tenant and its settings",
    run: async (ctx) => ctx.print(await ctx.client.get("/v1/tenant"), showTenant),
  },
  {
    group: "tenant",
    name: "settings",
    summary: "Change tenant settings (reads the current ETag for If-Match unless --if-match is given)",
    options: {
      "imei-lock": { type: "string", value: "true|false", description: "quarantine devices whose IMEI changes" },
      "allowed-countries": { type: "string", value: "<FR,DE,...>", description: 'countries devices may roam into; "" for anywhere' },
      "fail-mode": { type: "string", value: failModes.join("|"), description: "what enforcement points do when they cannot decide" },
      "if-match": { type: "string", value: "<etag>", description: "only if the tenant is still at this ETag" },
    },
    run: updateSettings,
  },
  {
    group: "tenants",
    name: "create",
    summary: "Create a tenant and its first admin key (platform admins only); the token is printed once",
    options: { name: { type: "string", value: "<name>", description: "the tenant's name (required)" } },
    run: async (ctx) => {
      const created = await ctx.client.idempotentPost("/v1/tenants", { body: { name: ctx.need("name") } });
      ctx.print(created, (c) => `${showTenant(c.tenant)}\nkeyId  ${c.keyId}\n${showToken(ctx, c.token)}`);
    },
  },
];
