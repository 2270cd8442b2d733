import * as z from "zod";
import { createRoute, OpenAPIHono } from "../route-table.ts";
import type { AppEnv, AppOptions } from "../env.ts";

const componentSchema = z.object({ status: z.enum(["ok", "down"]), detail: z.record(z.string(), z.unknown()).optional() });
const healthSchema = z
  .object({ status: z.enum(["ok", "degraded"]), components: z.record(z.string(), componentSchema) })
  .meta({ id: "Health" });

const route = createRoute({
  method: "get",
  path: "/health",
  tags: ["health"],
  summary: "Report the state of the store and the bus",
  security: [],
  responses: {
    200: { description: "Every component answers", content: { "application/json": { schema: healthSchema } } },
    503: { description: "A component is down", content: { "application/json": { schema: healthSchema } } },
  },
});

export function healthRoutes(options: AppOptions) {
  return new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
    const entries = await Promise.all(
      Object.entries(options.health).map(async ([name, check]) => {
        try {
          return [name, await check()] as const;
        } catch (error) {
          return [name, { status: "down" as const, detail: { error: String((error as Error).message ?? error) } }] as const;
        }
      }),
    );
    const components = Object.fromEntries(entries);
    const healthy = entries.every(([, result]) => result.status === "ok");
    return c.json({ status: healthy ? ("ok" as const) : ("degraded" as const), components }, healthy ? 200 : 503);
  });
}
