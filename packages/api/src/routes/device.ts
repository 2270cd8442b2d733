import * as z from "zod";
import { createRoute, OpenAPIHono } from "../route-table.ts";
import {
  actOnDevice,
  deviceActionInput,
  deviceRefSchema,
  deviceSchema,
  profileSchema,
  resolveDevice,
  sessionSchema,
  SimrootError,
  updateDevice,
  getDevice,
  leaseHolder,
  listDevices,
  listTimeline,
  pageInput,
  outcomeValue,
  registerDevice,
  timelineEntrySchema,
} from "@simroot/core";
import type { AppEnv } from "../env.ts";
import { readers, requireRole, writers } from "../middleware.ts";
import { errorResponses, json, pageOf } from "../openapi.ts";
import { etagOf, ifMatchHeaders, matchedRevision } from "../preconditions.ts";

const deviceId = z.object({ id: z.string().meta({ param: { name: "id", in: "path" }, example: "dev_01JD3Q4ZK8W9X2V5N6M7P8R9ST" }) });
const etag = etagOf;

const register = createRoute({
  method: "post",
  path: "/v1/devices",
  tags: ["devices"],
  summary: "Register a device by its SIM identity",
  middleware: [requireRole(...writers)] as const,
  request: { body: { required: true, content: { "application/json": { schema: registerDevice.schema } } } },
  responses: { 201: json("The registered device", deviceSchema), ...errorResponses(400, 401, 403, 409) },
});

const get = createRoute({
  method: "get",
  path: "/v1/devices/{id}",
  tags: ["devices"],
  summary: "Get a device",
  middleware: [requireRole(...readers)] as const,
  request: { params: deviceId },
  responses: { 200: json("The device", deviceSchema), ...errorResponses(400, 401, 403, 404, 503) },
});

const list = createRoute({
  method: "get",
  path: "/v1/devices",
  tags: ["devices"],
  summary: "List the tenant's devices, oldest first",
  middleware: [requireRole(...readers)] as const,
  request: { query: pageInput },
  responses: { 200: json("A page of devices", pageOf(deviceSchema, "DevicePage")), ...errorResponses(400, 401, 403, 503) },
});

const timeline = createRoute({
  method: "get",
  path: "/v1/devices/{id}/timeline",
  tags: ["devices"],
  summary: "The device's event timeline, oldest first",
  middleware: [requireRole(...readers)] as const,
  request: { params: deviceId, query: pageInput },
  responses: {
    200: json("A page of timeline entries", pageOf(timelineEntrySchema, "TimelinePage")),
    ...errorResponses(400, 401, 403, 404, 503),
  },
});

const action = createRoute({
  method: "post",
  path: "/v1/devices/{id}/{action}",
  tags: ["devices"],
  summary: "Suspend, quarantine, reinstate or revoke (terminal) a device, with a reason",
  description:
    "Audited, and published as device.suspended / device.quarantined / device.reinstated / device.revoked. Enforcement points learn it through the feed. " +
    "An operator's report lifts only the operator's hold (`identity.holds`), never simroot's; a reinstatement here lifts both.",
  middleware: [requireRole(...writers)] as const,
  request: {
    params: z.object({
      id: deviceId.shape.id,
      action: deviceActionInput.shape.action.meta({ param: { name: "action", in: "path" } }),
    }),
    body: {
      required: true,
      content: { "application/json": { schema: deviceActionInput.pick({ reason: true }).meta({ id: "DeviceActionInput" }) } },
    },
  },
  responses: {
    200: json("The device after the action", z.object({ outcome: z.enum(["applied", "duplicate", "stale"]), device: deviceSchema })),
    ...errorResponses(400, 401, 403, 404, 409, 503),
  },
});

const update = createRoute({
  method: "patch",
  path: "/v1/devices/{id}",
  tags: ["devices"],
  summary: "Rename, relabel (labels are replaced whole) or change the IMEI lock; needs If-Match",
  description:
    "A revoked device keeps the labels it was revoked with (409 device.revoked): the PEPs of those labels are served the addresses its revocation released.",
  middleware: [requireRole(...writers)] as const,
  request: {
    params: deviceId,
    headers: ifMatchHeaders,
    body: { required: true, content: { "application/json": { schema: updateDevice.schema.shape.changes } } },
  },
  responses: { 200: json("The updated device", deviceSchema), ...errorResponses(400, 401, 403, 404, 409, 412, 428, 503) },
});

const lookup = createRoute({
  method: "get",
  path: "/v1/devices/lookup",
  tags: ["devices"],
  summary: "Find a device by any identifier: EID, ICCID, IMSI, IMEI, MSISDN, NAI, SUPI or current IP",
  description:
    "With `ip` and `at`: the device that held the address at that time (from the sessions' history, whatever order they were reported in).",
  middleware: [requireRole(...readers)] as const,
  request: {
    query: deviceRefSchema.extend({ at: z.iso.datetime({ offset: true }).optional().meta({ description: "with ip: who held it then" }) }),
  },
  responses: { 200: json("The device", deviceSchema), ...errorResponses(400, 401, 403, 404, 503) },
});

const sessions = createRoute({
  method: "get",
  path: "/v1/devices/{id}/sessions",
  tags: ["devices"],
  summary: "The device's active sessions, one per bearer",
  middleware: [requireRole(...readers)] as const,
  request: { params: deviceId },
  responses: { 200: json("Active sessions", z.object({ items: z.array(sessionSchema) })), ...errorResponses(401, 403, 404, 503) },
});

const profiles = createRoute({
  method: "get",
  path: "/v1/devices/{id}/profiles",
  tags: ["devices"],
  summary: "The eUICC profiles the device's eSIM manager reported (SGP.32)",
  middleware: [requireRole(...readers)] as const,
  request: { params: deviceId },
  responses: { 200: json("eUICC profiles", z.object({ items: z.array(profileSchema) })), ...errorResponses(401, 403, 404, 503) },
});

export const deviceRoutes = new OpenAPIHono<AppEnv>()
  .openapi(lookup, async (c) => {
    const { at, ...ref } = c.req.valid("query");
    if (at !== undefined && ref.ip === undefined)
      throw new SimrootError("request.invalid", "input", "at needs ip", { issues: [{ path: "at", message: "only with ip" }] });
    const id =
      at !== undefined && ref.ip !== undefined
        ? await leaseHolder(c.get("ports"), c.get("ctx").tenantId, ref.ip, new Date(at).toISOString())
        : // Read afresh, as the API's other reads are: a cached alias may name a device revoked through another
          // instance, its SIM registered again since (review 109).
          await resolveDevice(c.get("ports"), c.get("ctx").tenantId, ref, true);
    if (!id) throw new SimrootError("device.not_found", "not_found", "No device in this tenant has that identifier");
    const device = await getDevice(c.get("ports"), c.get("ctx"), { id });
    c.header("etag", etag(device.revision));
    return c.json(device, 200);
  })
  .openapi(register, async (c) => {
    const device = outcomeValue(await registerDevice(c.get("ports"), c.get("ctx"), c.req.valid("json")));
    c.header("location", `/v1/devices/${device.id}`);
    c.header("etag", etag(device.revision));
    return c.json(device, 201);
  })
  .openapi(get, async (c) => {
    const device = await getDevice(c.get("ports"), c.get("ctx"), c.req.valid("param"));
    c.header("etag", etag(device.revision));
    return c.json(device, 200);
  })
  .openapi(list, async (c) => c.json(await listDevices(c.get("ports"), c.get("ctx"), c.req.valid("query")), 200))
  .openapi(timeline, async (c) => {
    const { id } = c.req.valid("param");
    await getDevice(c.get("ports"), c.get("ctx"), { id });
    return c.json(await listTimeline(c.get("ports"), c.get("ctx"), { ...c.req.valid("query"), subject: id }), 200);
  });

deviceRoutes
  .openapi(update, async (c) => {
    const ifRevision = await matchedRevision(c, async () => (await getDevice(c.get("ports"), c.get("ctx"), c.req.valid("param"))).revision);
    const device = outcomeValue(
      await updateDevice(c.get("ports"), c.get("ctx"), { ...c.req.valid("param"), ifRevision, changes: c.req.valid("json") }),
    );
    c.header("etag", etag(device.revision));
    return c.json(device, 200);
  })
  .openapi(action, async (c) => {
    const { id, action: name } = c.req.valid("param");
    const result = outcomeValue(await actOnDevice(c.get("ports"), c.get("ctx"), { id, action: name, reason: c.req.valid("json").reason }));
    c.header("etag", etag(result.device.revision));
    return c.json(result, 200);
  })
  .openapi(sessions, async (c) => {
    const device = await getDevice(c.get("ports"), c.get("ctx"), c.req.valid("param"));
    return c.json({ items: Object.values(device.identity.sessions).filter((session) => session !== undefined) }, 200);
  })
  .openapi(profiles, async (c) => {
    const device = await getDevice(c.get("ports"), c.get("ctx"), c.req.valid("param"));
    return c.json({ items: Object.values(device.identity.profiles) }, 200);
  });
