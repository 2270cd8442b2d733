/**
 * A loopback server speaking the AWS IoT control-plane REST API (the paths, methods and JSON
 * that @aws-sdk/client-iot sends), over an in-memory registry of things, groups, thing types,
 * certificates and policies. Tests and the bench point the real SDK client at it; it records
 * every request (operation, SigV4 authorization) so they can count API calls.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface IotRequest {
  readonly operation: string;
  readonly method: string;
  readonly path: string;
  readonly authorization: string;
  readonly body: IotRequestBody;
}

/** The JSON the SDK sends, the fields of every operation answered here (each sends the ones it needs). */
export interface IotRequestBody {
  readonly thingName?: string;
  readonly thingTypeName?: string;
  readonly attributePayload?: { readonly attributes?: Record<string, string>; readonly merge?: boolean };
  readonly expectedVersion?: number;
  readonly thingGroupName?: string;
  readonly thingGroupsToAdd?: readonly string[];
  readonly thingGroupsToRemove?: readonly string[];
  readonly policyDocument?: string;
  readonly target?: string;
}

const account = "111122223333";
const region = "eu-west-1";
const arn = (kind: string, name: string) => `arn:aws:iot:${region}:${account}:${kind}/${name}`;

export async function startIotLoopback(options: { latencyMs?: number } = {}) {
  const things = new Map<
    string,
    { attributes: Record<string, string>; version: number; thingTypeName?: string; groups: Set<string>; principals: Set<string> }
  >();
  const groups = new Map<string, { policies: Set<string> }>();
  const types = new Set<string>();
  const certificates = new Map<string, { status: string; policies: Set<string> }>();
  const policies = new Map<string, string>();
  const requests: IotRequest[] = [];

  const routes: [string, RegExp, string][] = [
    ["GET", /^\/things\/([^/]+)$/, "DescribeThing"],
    ["POST", /^\/things\/([^/]+)$/, "CreateThing"],
    ["PATCH", /^\/things\/([^/]+)$/, "UpdateThing"],
    ["GET", /^\/things\/([^/]+)\/thing-groups$/, "ListThingGroupsForThing"],
    ["GET", /^\/things\/([^/]+)\/principals$/, "ListThingPrincipals"],
    ["PUT", /^\/thing-groups\/updateThingGroupsForThing$/, "UpdateThingGroupsForThing"],
    ["PUT", /^\/thing-groups\/addThingToThingGroup$/, "AddThingToThingGroup"],
    ["PUT", /^\/thing-groups\/removeThingFromThingGroup$/, "RemoveThingFromThingGroup"],
    ["POST", /^\/thing-groups\/([^/]+)$/, "CreateThingGroup"],
    ["GET", /^\/thing-groups\/([^/]+)$/, "DescribeThingGroup"],
    ["POST", /^\/thing-types\/([^/]+)$/, "CreateThingType"],
    ["POST", /^\/policies\/([^/]+)$/, "CreatePolicy"],
    ["PUT", /^\/target-policies\/([^/]+)$/, "AttachPolicy"],
    ["POST", /^\/target-policies\/([^/]+)$/, "DetachPolicy"],
    ["POST", /^\/attached-policies\/(.+)$/, "ListAttachedPolicies"],
    ["PUT", /^\/certificates\/([^/]+)$/, "UpdateCertificate"],
  ];

  const fail = (response: ServerResponse, status: number, type: string, message: string) => {
    response.writeHead(status, { "content-type": "application/json", "x-amzn-errortype": type });
    response.end(JSON.stringify({ message }));
  };

  async function handle(request: IncomingMessage, response: ServerResponse) {
    let text = "";
    for await (const chunk of request) text += chunk;
    const url = new URL(request.url ?? "/", "http://loopback");
    const route = routes.find(([method, pattern]) => method === request.method && pattern.test(url.pathname));
    if (!route) return fail(response, 404, "UnknownOperationException", `${request.method} ${url.pathname}`);
    const [, pattern, operation] = route;
    const name = decodeURIComponent(pattern.exec(url.pathname)![1] ?? "");
    const body = text ? (JSON.parse(text) as IotRequestBody) : {};
    requests.push({ operation, method: request.method!, path: url.pathname, authorization: String(request.headers.authorization), body });
    if (options.latencyMs) await new Promise((resolve) => setTimeout(resolve, options.latencyMs));
    const ok = (payload: unknown = {}) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(payload));
    };
    const thing = things.get(name);
    switch (operation) {
      case "DescribeThing":
        if (!thing) return fail(response, 404, "ResourceNotFoundException", `Thing ${name} cannot be found.`);
        return ok({
          thingName: name,
          thingArn: arn("thing", name),
          attributes: thing.attributes,
          version: thing.version,
          thingTypeName: thing.thingTypeName,
        });
      case "CreateThing":
        if (thing) return fail(response, 409, "ResourceAlreadyExistsException", `Thing ${name} already exists`);
        if (body.thingTypeName && !types.has(body.thingTypeName))
          return fail(response, 404, "ResourceNotFoundException", `Thing type ${body.thingTypeName} does not exist`);
        if (Object.keys(body.attributePayload?.attributes ?? {}).length > (body.thingTypeName ? 50 : 3)) {
          return fail(response, 400, "InvalidRequestException", "too many attributes");
        }
        things.set(name, {
          attributes: body.attributePayload?.attributes ?? {},
          version: 1,
          thingTypeName: body.thingTypeName,
          groups: new Set(),
          principals: new Set(),
        });
        return ok({ thingName: name, thingArn: arn("thing", name), thingId: name });
      case "UpdateThing":
        if (!thing) return fail(response, 404, "ResourceNotFoundException", `Thing ${name} cannot be found.`);
        if (body.expectedVersion !== undefined && body.expectedVersion !== thing.version)
          return fail(response, 409, "VersionConflictException", "version mismatch");
        if (body.thingTypeName && !types.has(body.thingTypeName))
          return fail(response, 404, "ResourceNotFoundException", `Thing type ${body.thingTypeName} does not exist`);
        thing.attributes = body.attributePayload?.merge
          ? { ...thing.attributes, ...body.attributePayload.attributes }
          : (body.attributePayload?.attributes ?? thing.attributes);
        thing.thingTypeName = body.thingTypeName ?? thing.thingTypeName;
        thing.version += 1;
        return ok();
      case "ListThingGroupsForThing":
        if (!thing) return fail(response, 404, "ResourceNotFoundException", `Thing ${name} cannot be found.`);
        return ok({ thingGroups: [...thing.groups].map((group) => ({ groupName: group, groupArn: arn("thinggroup", group) })) });
      case "ListThingPrincipals":
        if (!thing) return fail(response, 404, "ResourceNotFoundException", `Thing ${name} cannot be found.`);
        return ok({ principals: [...thing.principals] });
      case "UpdateThingGroupsForThing":
      case "AddThingToThingGroup":
      case "RemoveThingFromThingGroup": {
        const target = things.get(body.thingName!);
        if (!target) return fail(response, 404, "ResourceNotFoundException", `Thing ${body.thingName} cannot be found.`);
        const add =
          operation === "UpdateThingGroupsForThing"
            ? (body.thingGroupsToAdd ?? [])
            : operation === "AddThingToThingGroup"
              ? [body.thingGroupName!]
              : [];
        const remove =
          operation === "UpdateThingGroupsForThing"
            ? (body.thingGroupsToRemove ?? [])
            : operation === "RemoveThingFromThingGroup"
              ? [body.thingGroupName!]
              : [];
        const missing = [...add, ...remove].find((group: string) => !groups.has(group));
        if (missing) return fail(response, 404, "ResourceNotFoundException", `Thing group ${missing} cannot be found.`);
        for (const group of add) target.groups.add(group);
        for (const group of remove) target.groups.delete(group);
        return ok();
      }
      case "CreateThingGroup":
        if (groups.has(name)) return fail(response, 409, "ResourceAlreadyExistsException", `Thing group ${name} already exists`);
        groups.set(name, { policies: new Set() });
        return ok({ thingGroupName: name, thingGroupArn: arn("thinggroup", name), thingGroupId: name });
      case "DescribeThingGroup":
        if (!groups.has(name)) return fail(response, 404, "ResourceNotFoundException", `Thing group ${name} cannot be found.`);
        return ok({ thingGroupName: name, thingGroupArn: arn("thinggroup", name) });
      case "CreateThingType":
        if (types.has(name)) return fail(response, 409, "ResourceAlreadyExistsException", `Thing type ${name} already exists`);
        types.add(name);
        return ok({ thingTypeName: name, thingTypeArn: arn("thingtype", name) });
      case "CreatePolicy":
        if (policies.has(name)) return fail(response, 409, "ResourceAlreadyExistsException", `Policy ${name} already exists`);
        JSON.parse(body.policyDocument!);
        policies.set(name, body.policyDocument!);
        return ok({ policyName: name, policyArn: arn("policy", name) });
      case "AttachPolicy":
      case "DetachPolicy": {
        if (!policies.has(name)) return fail(response, 404, "ResourceNotFoundException", `Policy ${name} cannot be found.`);
        const target = String(body.target);
        const holder = target.includes(":thinggroup/")
          ? groups.get(target.slice(target.lastIndexOf("/") + 1))
          : [...certificates.entries()].find(([id]) => target.endsWith(`/${id}`))?.[1];
        if (!holder) return fail(response, 404, "ResourceNotFoundException", `Target ${target} cannot be found.`);
        if (operation === "AttachPolicy") holder.policies.add(name);
        else holder.policies.delete(name);
        return ok();
      }
      case "ListAttachedPolicies": {
        const certificate = [...certificates.entries()].find(([id]) => name.endsWith(`/${id}`))?.[1];
        if (!certificate) return fail(response, 404, "ResourceNotFoundException", `Target ${name} cannot be found.`);
        return ok({ policies: [...certificate.policies].map((policy) => ({ policyName: policy, policyArn: arn("policy", policy) })) });
      }
      case "UpdateCertificate": {
        const certificate = certificates.get(name);
        if (!certificate) return fail(response, 404, "ResourceNotFoundException", `Certificate ${name} cannot be found.`);
        const status = url.searchParams.get("newStatus") ?? "";
        if (certificate.status === "REVOKED") return fail(response, 409, "CertificateStateException", "Certificate is revoked");
        certificate.status = status;
        return ok();
      }
    }
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: Error) => fail(response, 500, "InternalFailureException", error.message));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    requests,
    things,
    groups,
    types,
    certificates,
    policies,
    /** A certificate attached to a thing, with policies attached to the certificate. */
    addCertificate(thing: string, id: string, attached: string[] = []) {
      for (const policy of attached) if (!policies.has(policy)) policies.set(policy, "{}");
      certificates.set(id, { status: "ACTIVE", policies: new Set(attached) });
      things.get(thing)!.principals.add(arn("cert", id));
      return arn("cert", id);
    },
    operations: () => requests.map((request) => request.operation),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export type IotLoopback = Awaited<ReturnType<typeof startIotLoopback>>;
