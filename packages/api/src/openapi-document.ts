/**
 * What the route definitions cannot say on their own, added to the generated OpenAPI document
 * once for every route (so routes added later are covered without repeating it): servers, tags,
 * operationIds, the protocol headers (X-Request-Id, ETag, Location, Idempotency-Key,
 * Idempotent-Replayed), the statuses every route may answer (413, 415, 409/422 of
 * idempotency), and request schemas whose defaulted fields generated clients may omit.
 * `test/openapi-contract.test.ts` holds the result to the linters and to the server's behaviour.
 */
import { idempotencyLeaseSeconds, idempotencyLeaseSkewSeconds } from "@simroot/core";

const methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

/** The parts of the generated document read or written here; everything else is carried as it is. */
type Schema = { properties?: Record<string, Schema>; required?: string[]; default?: unknown; description?: string; [key: string]: unknown };
type Response = { $ref?: string; description?: string; headers?: Record<string, unknown>; [key: string]: unknown };
type Operation = {
  operationId?: string;
  tags?: string[];
  security?: unknown[];
  parameters?: unknown[];
  requestBody?: unknown;
  responses: Record<string, Response>;
  [key: string]: unknown;
};
type PathItem = { [method in (typeof methods)[number]]?: Operation };
type OpenApiDocument = {
  paths?: Record<string, PathItem>;
  components?: { headers?: Record<string, unknown>; parameters?: Record<string, unknown>; schemas?: Record<string, Schema> };
  security?: unknown[];
  servers?: readonly object[];
  tags?: { name: string; description?: string }[];
  webhooks?: Record<string, unknown>;
  [key: string]: unknown;
};

const tagDescriptions: Record<string, string> = {
  health: "Liveness of the store and the bus (public)",
  devices: "Devices identified by their SIM: registration, state, identity, timeline",
  ingestion: "Operator webhooks in, their sources, and the events parked for replay",
  audit: "The tamper-evident audit chain",
  access: "API keys, the tenant and its settings",
  policy: "Access policies, grants, enforcement settings and decisions",
  enforcement: "The signed feed enforcement points poll, and their flow reports",
};

/** Resources whose representations carry a strong ETag (`If-Match` writes are conditional on it). */
const etagResources = [
  "/v1/devices/{id}",
  // The device found, with its ETag for a later If-Match (review 127).
  "/v1/devices/lookup",
  "/v1/policies/{id}",
  "/v1/grants/{id}",
  "/v1/webhooks/{id}",
  "/v1/automation/rules/{id}",
  "/v1/tenant",
  "/v1/tenant/settings",
  "/v1/enforcement",
  "/v1/feed",
];

const verbs: Record<string, string> = { get: "get", post: "create", put: "replace", patch: "update", delete: "remove" };

/** `getDevicesById`, `createDevicesByIdByAction`: unique per method and path, stable, readable. */
export function derivedOperationId(method: string, path: string): string {
  const words = path
    .split("/")
    .filter((segment) => segment !== "" && segment !== "v1")
    .map((segment) => (segment.startsWith("{") ? `by-${segment.slice(1, -1)}` : segment))
    .flatMap((segment) => segment.split(/[^A-Za-z0-9]+/))
    .filter(Boolean);
  const head = method === "get" && !path.endsWith("}") ? "list" : (verbs[method] ?? method);
  return [head, ...words].map((word, index) => (index === 0 ? word : word[0]!.toUpperCase() + word.slice(1))).join("");
}

/** What each error status of a route means (routes declare them with openapi.ts `errorResponses`, described here). */
const problemDescriptions: Record<number, string> = {
  400: "Invalid input: `errors` names each bad field",
  401: "Missing or invalid API key",
  403: "The key's role may not do this",
  404: "No such resource in this tenant",
  409: "Conflicts with the current state",
  412: "`If-Match` does not match the current ETag",
  413:
    "The body is too large, or (ingestion) it reports more than 250 facts or 200 KB of one device " +
    "(`ingest.too_many_for_device`, naming the device): nothing of it was recorded; split it and send again",
  503:
    "A dependency is down, (ingestion) the applier's backlog is past its bound, or past half of it and the tenant's " +
    "events of the last minute would pass a quarter of it (`ingest.backlogged`), or (devices) a deploy is under way and the " +
    "device is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds",
};

const header = (name: string) => ({ $ref: `#/components/headers/${name}` });
const problemSchemaRef = { $ref: "#/components/schemas/Problem" };

const problem = (description: string) => ({ description, content: { "application/problem+json": { schema: problemSchemaRef } } });

export function completeDocument(document: object, options: { readonly servers?: readonly object[] } = {}): OpenApiDocument {
  const doc = structuredClone(document) as OpenApiDocument;
  doc.servers = options.servers ?? [{ url: "/", description: "This deployment (the document is served by the API itself)" }];
  doc.components ??= {};
  doc.components.headers = { ...doc.components.headers, ...protocolHeaders };
  doc.components.parameters = { ...doc.components.parameters, IdempotencyKey: idempotencyKeyParameter };
  const tags = new Set<string>();
  const operationIds = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of methods) {
      const operation = item[method];
      if (!operation) continue;
      operation.operationId ??= derivedOperationId(method, path);
      if (operationIds.has(operation.operationId)) throw new Error(`duplicate operationId ${operation.operationId}`);
      operationIds.add(operation.operationId);
      for (const tag of operation.tags ?? []) tags.add(tag);
      completeOperation(doc, path, method, operation);
    }
  }
  doc.tags = [...tags].sort().map((name) => ({ name, ...(tagDescriptions[name] ? { description: tagDescriptions[name] } : {}) }));
  if (doc.webhooks && Object.keys(doc.webhooks).length === 0) delete doc.webhooks;
  optionalDefaultsInRequests(doc);
  return doc;
}

function completeOperation(doc: OpenApiDocument, path: string, method: string, operation: Operation) {
  const secured = operation.security === undefined ? (doc.security ?? []).length > 0 : operation.security.length > 0;
  const responses = operation.responses;
  const writes = method === "post" || method === "put" || method === "patch";
  for (const [status, response] of Object.entries(responses))
    if (response.description === "") response.description = problemDescriptions[Number(status)] ?? "Error";
  // A path parameter that cannot be an id of its kind is refused before anything is read (review 142: 18 operations
  // answered this 400 without listing it).
  if (path.includes("{") && !path.startsWith("/v1/ingest/"))
    responses["400"] ??= problem("Invalid input: `errors` names each bad field (a path parameter that is no id of its kind)");
  if (operation.requestBody) responses["413"] ??= problem("The body is larger than 1 MiB");
  // Any body of a write or a delete not labelled JSON is refused, on a route that takes none too (review 142).
  if ((writes || method === "delete") && !path.startsWith("/v1/ingest/"))
    responses["415"] ??= problem(
      operation.requestBody
        ? "The body is not JSON (`Content-Type: application/json`)"
        : "A body was sent labelled other than JSON (this operation takes none: send no Content-Type, or `application/json`)",
    );
  if (secured || path.startsWith("/v1/ingest/")) {
    responses["401"] ??= problem("Missing or invalid credentials");
    // Per API key, or per source for webhooks (the limits are the tenant's settings, `rateLimits`), and per tenant over its
    // credentials of a kind (the deployment's `tenantRateLimits`).
    responses["429"] ??= {
      ...problem(
        "The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs " +
          'together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds',
      ),
      headers: { "Retry-After": header("RetryAfter"), RateLimit: header("RateLimit"), "RateLimit-Policy": header("RateLimitPolicy") },
    };
    // Every such route reads the store, its credential first: while the store is down it answers 503 with Retry-After
    // (review 142: only three operations listed it, and none its Retry-After).
    // And while a deploy is under way, on an item a newer release wrote (review 143: tenant settings, rules, grants,
    // enforcement settings, webhook subscriptions, keys; devices say so in their own words).
    responses["503"] ??= problem(
      "A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form " +
        "(`store.newer_format`): retry after Retry-After seconds",
    );
    responses["503"].headers = { "Retry-After": header("RetryAfter"), ...responses["503"].headers };
  }
  // Every PATCH (README "Conventions"): an empty change is refused; one naming only the values held changes nothing.
  if (method === "patch" && responses["200"] && !responses["200"].$ref)
    responses["200"].description =
      `${responses["200"].description ?? "The resource"}. A change naming only the values the resource holds answers it as it is: the same ETag, no new revision, no event, nothing audited`;
  // Idempotency-Key is honoured by every secured POST but ingestion, whose webhooks are deduplicated by their own ids.
  const idempotent = secured && method === "post" && !path.startsWith("/v1/ingest/");
  if (idempotent) {
    operation.parameters = [...(operation.parameters ?? []), { $ref: "#/components/parameters/IdempotencyKey" }];
    responses["409"] ??= problem("Conflicts with the current state");
    responses["409"].description += "; or a request with this Idempotency-Key is still in progress";
    responses["422"] ??= problem("This Idempotency-Key was used with another request");
  }
  for (const [status, response] of Object.entries(responses)) {
    if (response.$ref) continue;
    const headers: Record<string, unknown> = { "X-Request-Id": header("RequestId"), ...response.headers };
    const success = status.startsWith("2");
    if (success && carriesEtag(path, method, status)) headers["ETag"] = header("ETag");
    if (status === "201" && doc.paths?.[`${path}/{id}`]?.get) headers["Location"] = header("Location");
    if (success && idempotent) headers["Idempotent-Replayed"] = header("IdempotentReplayed");
    // A webhook's answer says what is left of its source's limit once the source is known and the request counted.
    const counted = path.startsWith("/v1/ingest/") ? !["401", "403", "404", "413"].includes(status) : status !== "401" && status !== "403";
    if (secured && counted) {
      headers.RateLimit ??= header("RateLimit");
      headers["RateLimit-Policy"] ??= header("RateLimitPolicy");
    }
    // Every answer of the feed names the version it reaches; a 304 carries the re-signed head it would have had.
    if (path === "/v1/feed" && (status === "200" || status === "304")) headers["ETag"] = header("ETag");
    if (path === "/v1/feed" && status === "304") headers["simroot-feed-head"] = header("FeedHead");
    response.headers = headers;
  }
}

function carriesEtag(path: string, method: string, status: string): boolean {
  if (method === "get" || method === "put" || method === "patch") return etagResources.includes(path);
  if (method === "post" && status === "201") return etagResources.includes(`${path}/{id}`);
  // An action on the resource itself (`/v1/devices/{id}/revoke`), not on one of its sub-resources.
  if (method === "post")
    return etagResources.some(
      (resource) => resource.includes("{") && /^\/([a-z-]+|\{[A-Za-z]+\})$/.test(path.slice(resource.length)) && path.startsWith(resource),
    );
  return false;
}

/**
 * A request field with a default may be omitted; openapi-typescript (by default) types every
 * property that has a `default` as present, which is right for responses and wrong for the
 * component schemas requests use. Those defaults move into the description.
 */
function optionalDefaultsInRequests(doc: OpenApiDocument) {
  const schemas = doc.components?.schemas ?? {};
  const requestSchemas = new Set<string>();
  const visit = (node: unknown) => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== "object") return;
    const ref = (node as { $ref?: unknown }).$ref;
    if (typeof ref === "string" && ref.startsWith("#/components/schemas/")) {
      const name = ref.slice("#/components/schemas/".length);
      if (!requestSchemas.has(name)) {
        requestSchemas.add(name);
        visit(schemas[name]);
      }
    }
    Object.values(node).forEach(visit);
  };
  for (const item of Object.values(doc.paths ?? {})) {
    for (const method of methods) if (item[method]?.requestBody) visit(item[method].requestBody);
  }
  const strip = (node: unknown) => {
    if (Array.isArray(node)) return node.forEach(strip);
    if (!node || typeof node !== "object") return;
    const schema = node as Schema;
    if (schema.properties && typeof schema.properties === "object") {
      for (const [name, property] of Object.entries(schema.properties)) {
        if (property && typeof property === "object" && "default" in property) {
          if (Array.isArray(schema.required)) schema.required = schema.required.filter((field) => field !== name);
          if (schema.required?.length === 0) delete schema.required;
          const note = `Default: \`${JSON.stringify(property.default)}\`.`;
          property.description = property.description ? `${property.description}. ${note}` : note;
          delete property.default;
        }
      }
    }
    Object.values(schema).forEach(strip);
  };
  for (const name of requestSchemas) strip(schemas[name]);
}

const idempotencyKeyParameter = {
  name: "Idempotency-Key",
  in: "header",
  required: false,
  description:
    "Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first " +
    "response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are " +
    `scoped to the API key; a request that never completed frees its key after ${idempotencyLeaseSeconds + idempotencyLeaseSkewSeconds} seconds.`,
  schema: { type: "string", minLength: 1, maxLength: 255, pattern: "^[\\x21-\\x7e]+$" },
};

const protocolHeaders = {
  RequestId: { description: "The request's id: the caller's X-Request-Id when sane, else a new one", schema: { type: "string" } },
  ETag: { description: "The strong entity tag of the representation: send it back in If-Match", schema: { type: "string" } },
  Location: { description: "The created resource", schema: { type: "string", format: "uri-reference" } },
  IdempotentReplayed: {
    description: "`true` when this is the kept response of an earlier request with the same Idempotency-Key",
    schema: { type: "string", enum: ["true"] },
  },
  FeedHead: { description: "The signed feed head (base64 JSON), also on 304", schema: { type: "string" } },
  RateLimitPolicy: {
    description:
      "The rate limits that count the request (draft-ietf-httpapi-ratelimit-headers), the credential's then its tenant's " +
      'credentials of its kind together (`tenantRateLimits` of `GET /v1/tenant`): `"default";q=<requests>;w=<seconds>, "tenant";q=<requests>;w=<seconds>`',
    schema: { type: "string" },
  },
  RateLimit: {
    description: 'What is left of each: `"default";r=<remaining>;t=<seconds until the window resets>, "tenant";r=<remaining>;t=<seconds>`',
    schema: { type: "string" },
  },
  RetryAfter: { description: "Seconds to wait before asking again", schema: { type: "integer", minimum: 1 } },
};
