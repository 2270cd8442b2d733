import * as z from "zod";
import { createRoute, OpenAPIHono } from "../route-table.ts";
import { busDeadLetterSchema, listBusDeadLetters, outcomeValue, pageInput, redriveBusDeadLetter } from "@simroot/core";
import type { AppEnv } from "../env.ts";
import { readers, requireRole, writers } from "../middleware.ts";
import { errorResponses, json, pageOf } from "../openapi.ts";

const list = createRoute({
  method: "get",
  path: "/v1/bus/dead-letters",
  tags: ["operations"],
  summary: "Events a consumer did not take after its retries (the bus's dead letters), with the rule and the reason",
  description:
    "Kept 14 days. Locally the bus records them; in AWS the drain function records what reaches each rule's SQS dead-letter " +
    "queue. Rule `outbox`: a committed event the bus itself refused for good (over EventBridge's entry size, or malformed), " +
    "with the place of its audit record (`record`); the outbox went on without it, and it cannot be redriven. " +
    "Rule `outbox` with `held`: a committed event the bus did not take for 12 hours (down, throttling, a permission missing), " +
    "set aside before the audit table's stream dropped it (24 hours); a redrive publishes it. " +
    "Not the parked facts of `/v1/dead-letters` (accepted events waiting for their device).",
  middleware: [requireRole(...readers)] as const,
  request: { query: pageInput },
  responses: { 200: json("A page of dead letters", pageOf(busDeadLetterSchema, "BusDeadLetterPage")), ...errorResponses(400, 401, 403) },
});

const redrive = createRoute({
  method: "post",
  path: "/v1/bus/dead-letters/{id}/redrive",
  tags: ["operations"],
  summary: "Hand a dead letter back to its consumer (that rule only); audited. If it fails again it comes back as a new dead letter",
  description:
    "409 for a letter of rule `outbox` the bus refused: it refused the event itself, so it has no consumer to hand it back to. " +
    "A `held` one is published again from its audit record, with its own id, to every rule (as the outbox would have). " +
    "409 `dead_letter.too_old` for an event older than 6 days: its consumers no longer know it by its id, and would act on it twice. " +
    "The event is handed back before the letter is forgotten: 503 when it could not be (the letter stays as it was); a redrive " +
    "interrupted after the hand-back leaves the letter listed, and a second one hands the event back again, which its consumer takes as a redelivery.",
  middleware: [requireRole(...writers)] as const,
  request: {
    params: z.object({
      id: z
        .string()
        .max(300)
        .meta({ param: { name: "id", in: "path" } }),
    }),
  },
  responses: {
    202: json("Handed back", z.object({ id: z.string(), rule: z.string(), redriven: z.boolean() })),
    ...errorResponses(401, 403, 404, 409, 503),
  },
});

export const busRoutes = new OpenAPIHono<AppEnv>()
  .openapi(list, async (c) => c.json(await listBusDeadLetters(c.get("ports"), c.get("ctx"), c.req.valid("query")), 200))
  .openapi(redrive, async (c) => c.json(outcomeValue(await redriveBusDeadLetter(c.get("ports"), c.get("ctx"), c.req.valid("param"))), 202));
