/**
 * The runtime of `@hono/zod-openapi`'s `OpenAPIHono`, without its OpenAPI generator.
 *
 * Routes are declared as before (`createRoute`, `app.openapi(route, handler)`), with the same
 * types (those of `@hono/zod-openapi`, imported as types only) and the same validation: each
 * request part a route declares is parsed by its zod schema (`@hono/zod-validator`), a body of
 * a media type it does not declare is answered 415, and a failure goes to the app's
 * `defaultHook` (the problem+json answer). What the app does not do at run time is generate its
 * OpenAPI document: `@hono/zod-openapi` calls `extendZodWithOpenApi(z)` when it loads, which
 * keeps all of zod (JSON Schema conversion both ways, ~90 KB) and the generator (~30 KB) in every
 * function. The routes are kept as plain definitions (`openAPIRegistry.definitions`, the shape
 * the generator reads) and `npm run contracts` writes the document from them
 * (`contracts.ts`); the app serves that checked-in file (`documents.ts`), and
 * `test/openapi-contract.test.ts` fails when it differs from what the routes say.
 */
import type { RouteConfig, createRoute as typedCreateRoute, OpenAPIHono as TypedOpenAPIHono } from "@hono/zod-openapi";
import { zValidator } from "@hono/zod-validator";
import type { Context, Env, MiddlewareHandler, Next, Schema } from "hono";
import type { HonoBase } from "hono/hono-base";
import * as z from "zod";
import type { ZodType } from "zod";
import { Hono } from "./hono-app.ts";
import { HTTPException } from "hono/http-exception";

/** One entry of what the generator reads (`@asteasolutions/zod-to-openapi`'s registry definitions). */
export type RouteDefinition =
  | { readonly type: "route"; readonly route: RouteConfig }
  | { readonly type: "component"; readonly componentType: string; readonly name: string; readonly component: unknown };

/** The part of zod-to-openapi's `OpenAPIRegistry` the app uses: it records, nothing more. */
class DefinitionList {
  readonly definitions: RouteDefinition[] = [];
  registerPath(route: RouteConfig) {
    this.definitions.push({ type: "route", route });
  }
  registerComponent(componentType: string, name: string, component: unknown) {
    this.definitions.push({ type: "component", componentType, name, component });
    return { name, ref: { $ref: `#/components/${componentType}/${name}` } };
  }
}

type Hook = (result: unknown, c: Context) => unknown;

const isZod = (value: unknown): value is ZodType =>
  typeof value === "object" && value !== null && typeof (value as { safeParseAsync?: unknown }).safeParseAsync === "function";

const isJsonType = (type: string) => /^application\/([a-z-.]+\+)?json/i.test(type);
const jsonRequest = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;

function matchesMediaType(contentType: string, mediaType: string): boolean {
  if (mediaType === "*/*") return true;
  if (isJsonType(mediaType)) return jsonRequest.test(contentType);
  const essence = contentType.split(";")[0]!.trim().toLowerCase();
  if (mediaType.endsWith("/*")) return essence.startsWith(mediaType.slice(0, -1).toLowerCase());
  return essence === mediaType.toLowerCase();
}

async function hasBody(c: Context): Promise<boolean> {
  const raw = c.req.raw;
  if (raw.body === null) return false;
  if (raw.bodyUsed) return (await c.req.arrayBuffer()).byteLength > 0;
  const reader = raw.clone().body!.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return false;
      if (value.byteLength > 0) return true;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** Characters of a path parameter: simroot's ids are about 30, an EventBridge archive's event ids under 300. */
export const maxPathParameterLength = 300;

class RouteTable extends Hono {
  readonly openAPIRegistry = new DefinitionList();
  readonly defaultHook: Hook | undefined;
  #parent: RouteTable | undefined;

  constructor(init: { defaultHook?: Hook } = {}) {
    super();
    this.defaultHook = init.defaultHook;
  }

  #hook(): Hook | undefined {
    for (let app: RouteTable | undefined = this; app; app = app.#parent) if (app.defaultHook) return app.defaultHook;
    return undefined;
  }

  openapi = ({ middleware, hide, ...route }: RouteConfig, handler: MiddlewareHandler, hook?: Hook) => {
    if (!hide) this.openAPIRegistry.registerPath(route);
    const effectiveHook: Hook = hook ?? ((result, c) => this.#hook()?.(result, c));
    const validators: MiddlewareHandler[] = [];
    // Every path parameter is bounded first, whatever the route's own schema says: each names a key of the store, which
    // DynamoDB refuses past 1,024 bytes of a sort key (review 130: an id of 1,100 characters was answered 500).
    const names = [...String(route.path).matchAll(/\/{(.+?)}/g)].map((match) => match[1]!);
    if (names.length > 0) {
      const bounded = z.object(Object.fromEntries(names.map((name) => [name, z.string().max(maxPathParameterLength)])));
      validators.push(zValidator("param", bounded, effectiveHook as never) as MiddlewareHandler);
    }
    const request = route.request;
    for (const [part, target] of [
      ["query", "query"],
      ["params", "param"],
      ["headers", "header"],
      ["cookies", "cookie"],
    ] as const) {
      // The routes declare each part as one zod object (never the list of header schemas the type also allows).
      if (request?.[part]) validators.push(zValidator(target, request[part] as ZodType, effectiveHook as never) as MiddlewareHandler);
    }
    const content: Partial<Record<string, { readonly schema?: unknown; readonly $ref?: string }>> | undefined = request?.body?.content;
    if (content) {
      const declared = Object.keys(content);
      if (declared.some((type) => isZod(content[type]?.schema) && isJsonType(type))) {
        validators.push(async (c: Context, next: Next) => {
          const contentType = c.req.header("content-type");
          if (contentType ? !declared.some((type) => matchesMediaType(contentType, type)) : await hasBody(c))
            throw new HTTPException(415, { message: "Unsupported Media Type" });
          await next();
        });
      }
      for (const type of declared) {
        const schema = content[type]?.schema;
        if (!isZod(schema) || !isJsonType(type)) continue;
        const validator = zValidator("json", schema, effectiveHook as never) as MiddlewareHandler;
        if (request?.body?.required) validators.push(validator);
        else
          validators.push(async (c: Context, next: Next) => {
            const contentType = c.req.header("content-type");
            if (contentType && isJsonType(contentType)) return validator(c, next);
            c.req.addValidatedData("json", {});
            await next();
          });
      }
    }
    const before = middleware ? (Array.isArray(middleware) ? middleware : [middleware]) : [];
    this.on([route.method], [String(route.path).replaceAll(/\/{(.+?)}/g, "/:$1")], ...before, ...validators, handler);
    return this;
  };

  override route<
    SubPath extends string,
    SubEnv extends Env,
    SubSchema extends Schema,
    SubBasePath extends string,
    SubCurrentPath extends string,
  >(path: SubPath, app: HonoBase<SubEnv, SubSchema, SubBasePath, SubCurrentPath>) {
    const routed = super.route(path, app);
    if (!(app instanceof RouteTable)) return routed;
    app.#parent ??= this;
    const prefix = path.replaceAll(/:([^/]+)/g, "{$1}").replace(/\/$/, "");
    for (const definition of app.openAPIRegistry.definitions) {
      if (definition.type === "route")
        this.openAPIRegistry.registerPath({ ...definition.route, path: `${prefix}${definition.route.path}` });
      else this.openAPIRegistry.registerComponent(definition.componentType, definition.name, definition.component);
    }
    return routed;
  }
}

/** `OpenAPIHono` of `@hono/zod-openapi` (its types), run by `RouteTable`: the document comes from `npm run contracts`. */
export const OpenAPIHono = RouteTable as unknown as typeof TypedOpenAPIHono;
export type OpenAPIHono<E extends Env = Env> = TypedOpenAPIHono<E>;

/** `createRoute` of `@hono/zod-openapi`: the definition, and the Hono path (`/v1/devices/:id`) it routes. */
export const createRoute: typeof typedCreateRoute = (config) =>
  Object.defineProperty({ ...config }, "getRoutingPath", {
    value: () => config.path.replaceAll(/\/{(.+?)}/g, "/:$1"),
    enumerable: false,
  }) as never;

/** The definitions an app built from these routes holds (routes and components), for the generator. */
export function routeDefinitions(app: unknown): readonly RouteDefinition[] {
  return (app as RouteTable).openAPIRegistry.definitions;
}
