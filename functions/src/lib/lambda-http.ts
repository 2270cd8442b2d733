/**
 * The HTTP API's Lambda integration (payload format 2.0) to a fetch handler and back.
 * `hono/aws-lambda` is deprecated in the installed Hono (to be removed in v5, in favour of a
 * `@hono/aws-lambda` package not on the registry yet); this is the small part of it simroot uses.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { logger, publishMetrics } from "./telemetry.ts";

const textTypes = /^(text\/|application\/([\w.+-]*\+)?(json|xml|javascript|yaml)|application\/x-www-form-urlencoded)/;

export function toRequest(event: APIGatewayProxyEventV2): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(event.headers ?? {})) if (value !== undefined) headers.set(name, value);
  if (event.cookies?.length) headers.set("cookie", event.cookies.join("; "));
  const host = event.requestContext.domainName ?? headers.get("host") ?? "localhost";
  const url = `https://${host}${event.rawPath}${event.rawQueryString ? `?${event.rawQueryString}` : ""}`;
  const method = event.requestContext.http.method;
  const hasBody = event.body !== undefined && event.body !== null && method !== "GET" && method !== "HEAD";
  const body = hasBody ? (event.isBase64Encoded ? Buffer.from(event.body!, "base64") : event.body!) : undefined;
  return new Request(url, { method, headers, body });
}

export async function toResult(response: Response): Promise<APIGatewayProxyStructuredResultV2> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  const type = response.headers.get("content-type") ?? "";
  const bytes = Buffer.from(await response.arrayBuffer());
  const text = type === "" || textTypes.test(type);
  return {
    statusCode: response.status,
    headers,
    ...(cookies.length > 0 ? { cookies } : {}),
    body: text ? bytes.toString("utf8") : bytes.toString("base64"),
    isBase64Encoded: !text,
  };
}

/** What the app is handed beside the request (Hono's `c.env`): the gateway's event, whose context names the client. */
export interface LambdaBindings {
  readonly event: APIGatewayProxyEventV2;
}

/** The client's address as the gateway saw it (the connection's, not a header the client could set). */
export const sourceIp = (env: unknown): string | undefined =>
  (env as Partial<LambdaBindings> | undefined)?.event?.requestContext?.http?.sourceIp;

/**
 * A Lambda handler for the HTTP API serving `fetch` (the Hono app's): log lines carry the
 * invocation's context, and the metrics the request recorded are printed when it is answered.
 */
export function lambdaHandler(
  fetch: (request: Request, env: LambdaBindings) => Response | Promise<Response>,
  settle?: () => Promise<void>,
) {
  return async (event: APIGatewayProxyEventV2, context?: Context): Promise<APIGatewayProxyStructuredResultV2> => {
    if (context) logger.addContext(context);
    try {
      return await toResult(await fetch(toRequest(event), { event }));
    } finally {
      // Background work the request started (the feed notices of its commits) ends before the environment is frozen.
      // Never in place of the answer: a notice that could not be sent is the PEPs' idle poll's to find.
      await settle?.().catch(() => {});
      publishMetrics();
    }
  };
}
