/**
 * The daemon's configuration, from flags or the environment (flags win), read and checked
 * in this one place.
 */
import { parseScope } from "@simroot/core/feed/scope";
import { maxClockSkewSeconds } from "@simroot/core/feed/wire";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { parseBreakGlass } from "../engine.ts";

export interface PepConfig {
  /** The control plane's base URL. */
  readonly url: string;
  /** An API key with the `pep` role. */
  readonly apiKey: string;
  /** PEM files of the pinned feed public keys (Ed25519 SPKI). */
  readonly publicKeyFiles: readonly string[];
  /** The tenant enforced: required, so that no genuine feed of another tenant is ever adopted. */
  readonly tenantId: string;
  /** Narrows the feed to a site or segment (`key=value[,key=value]`); undefined for the whole tenant. */
  readonly selector: string | undefined;
  /** How far this PEP's clock may be off the control plane's, seconds (0..2). */
  readonly clockSkewSeconds: number;
  /**
   * `stream`: ask for the feed as a stream (a control plane that cannot stream answers long polls); `long-poll`: never;
   * `push`: follow the tenant's notices over MQTT (AWS IoT Core, or the local hub) and poll only when one comes.
   */
  readonly feedMode: "stream" | "long-poll" | "push";
  /** `push`: the MQTT broker (`mqtts://<iot:Data-ATS endpoint>:443` in AWS). */
  readonly mqttUrl: string | undefined;
  /** `push` in AWS: the IoT Core custom authorizer of the feed (the deployment's `feedAuthorizer` output). */
  readonly mqttAuthorizer: string | undefined;
  readonly statePath: string;
  /** The Envoy ext_authz listener: every path is an authorization check. */
  readonly port: number;
  /** The admin listener: GET /healthz, POST /v1/decide. */
  readonly adminPort: number;
  /** The ext_authz listener's address. */
  readonly host: string;
  /**
   * The admin listener's address: loopback unless told, whatever `host` is. It has no authentication and tells who holds
   * an address and whether a device id exists; an Envoy elsewhere needs ext_authz on a wider address, not this (review 85).
   */
  readonly adminHost: string;
  readonly breakGlass: readonly string[];
  /** Flow report window, seconds; 0 disables reporting. */
  readonly flowIntervalSeconds: number;
  readonly pepId: string;
  /** Proxies in front of Envoy that append to x-forwarded-for (0: Envoy's own entry, the last one, is the client). */
  readonly xffTrustedHops: number;
}

export class UsageError extends Error {
  override readonly name = "UsageError";
}

function selectorOf(value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  try {
    return parseScope(value).text;
  } catch (error) {
    throw new UsageError(`--selector: ${(error as Error).message}`);
  }
}

export const usage = `Usage: simroot-pep [options]

The simroot policy enforcement point: replicates the signed policy feed, answers Envoy
ext_authz checks, serves decisions and health, reports flows.

Options (environment variable in brackets):
  --url <url>               control plane base URL [SIMROOT_URL]
  --key <api key>           API key with the pep role [SIMROOT_PEP_KEY]
  --public-key <file>       pinned feed public key, PEM; repeat during a key rotation [SIMROOT_FEED_PUBLIC_KEY, comma-separated]
  --tenant <id>             the tenant enforced (required) [SIMROOT_TENANT]
  --clock-skew <s>          clock-skew tolerance of head expiry checks, 0..2 s (default 1) [SIMROOT_PEP_CLOCK_SKEW]
  --feed <mode>             stream (one connection carries the changes; long polls where the control plane cannot
                            stream), long-poll, or push (follow the tenant's notices over MQTT, poll when one comes:
                            what to use in AWS, where a long poll holds a Lambda). Default: push when --mqtt-url is
                            given, else stream [SIMROOT_PEP_FEED]
  --mqtt-url <url>          push: the MQTT broker, mqtts://<your iot:Data-ATS endpoint>:443 in AWS [SIMROOT_PEP_MQTT_URL]
  --mqtt-authorizer <name>  push in AWS: the feed's IoT custom authorizer (sst output feedAuthorizer) [SIMROOT_PEP_MQTT_AUTHORIZER]
  --selector <labels>       follow only the devices of a site or segment, key=value[,key=value] [SIMROOT_PEP_SELECTOR]
  --state <file>            state file (default ./simroot-pep-state.json) [SIMROOT_PEP_STATE]
  --port <n>                ext_authz listener port (default 9191) [SIMROOT_PEP_PORT]
  --admin-port <n>          /healthz and /v1/decide listener port (default 9192) [SIMROOT_PEP_ADMIN_PORT]
  --host <address>          ext_authz listen address (default 127.0.0.1) [SIMROOT_PEP_HOST]
  --admin-host <address>    admin listen address (default 127.0.0.1, whatever --host is: it has no authentication)
                            [SIMROOT_PEP_ADMIN_HOST]
  --break-glass <list>      CIDRs, addresses or hosts reachable when the feed is stale, comma-separated [SIMROOT_PEP_BREAK_GLASS]
  --flow-interval <s>       flow report window in seconds, 0 to disable (default 10) [SIMROOT_PEP_FLOW_INTERVAL]
  --pep-id <id>             this PEP's name in flow reports (default: the host name) [SIMROOT_PEP_ID]
  --xff-trusted-hops <n>    proxies before Envoy that append to x-forwarded-for (default 0) [SIMROOT_PEP_XFF_TRUSTED_HOPS]
  -h, --help                show this help
`;

const list = (text: string | undefined) =>
  (text ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);

function integer(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max)
    throw new UsageError(`${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(text)})`);
  return value;
}

/** The command line's options; throws UsageError on one it does not take. */
function commandLine(argv: readonly string[]) {
  try {
    return parseArgs({
      args: [...argv],
      strict: true,
      options: {
        url: { type: "string" },
        key: { type: "string" },
        "public-key": { type: "string", multiple: true },
        tenant: { type: "string" },
        "clock-skew": { type: "string" },
        selector: { type: "string" },
        feed: { type: "string" },
        "mqtt-url": { type: "string" },
        "mqtt-authorizer": { type: "string" },
        state: { type: "string" },
        port: { type: "string" },
        "admin-port": { type: "string" },
        host: { type: "string" },
        "admin-host": { type: "string" },
        "break-glass": { type: "string", multiple: true },
        "flow-interval": { type: "string" },
        "pep-id": { type: "string" },
        "xff-trusted-hops": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** The configuration, or undefined when help was asked for. Throws UsageError on a bad command line or environment. */
export function readConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): PepConfig | undefined {
  const values = commandLine(argv);
  if (values.help) return undefined;
  const url = values.url ?? env.SIMROOT_URL;
  const apiKey = values.key ?? env.SIMROOT_PEP_KEY;
  const publicKeyFiles = values["public-key"] ?? list(env.SIMROOT_FEED_PUBLIC_KEY);
  if (!url) throw new UsageError("the control plane URL is required (--url or SIMROOT_URL)");
  try {
    new URL(url);
  } catch {
    throw new UsageError(`--url is not a URL: ${url}`);
  }
  if (!apiKey) throw new UsageError("a pep API key is required (--key or SIMROOT_PEP_KEY)");
  if (publicKeyFiles.length === 0) throw new UsageError("the pinned feed public key is required (--public-key or SIMROOT_FEED_PUBLIC_KEY)");
  // One key signs every tenant's feed: a PEP that learned its tenant from the first feed to arrive could be handed another's.
  const tenantId = values.tenant ?? env.SIMROOT_TENANT;
  if (!tenantId) throw new UsageError("the tenant is required (--tenant or SIMROOT_TENANT)");
  const breakGlass = values["break-glass"] ? values["break-glass"].flatMap(list) : list(env.SIMROOT_PEP_BREAK_GLASS);
  for (const entry of breakGlass) {
    try {
      parseBreakGlass(entry);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  const mqttUrl = values["mqtt-url"] ?? env.SIMROOT_PEP_MQTT_URL;
  const mqttAuthorizer = values["mqtt-authorizer"] ?? env.SIMROOT_PEP_MQTT_AUTHORIZER;
  // Given a broker, the PEP follows it unless told otherwise.
  const feedMode = values.feed ?? env.SIMROOT_PEP_FEED ?? (mqttUrl ? "push" : "stream");
  if (feedMode !== "stream" && feedMode !== "long-poll" && feedMode !== "push")
    throw new UsageError(`--feed must be stream, long-poll or push, not ${feedMode}`);
  if (feedMode === "push") {
    if (!mqttUrl) throw new UsageError("--feed push needs the MQTT broker (--mqtt-url or SIMROOT_PEP_MQTT_URL)");
    if (!/^mqtts?:\/\/[^/]+/.test(mqttUrl)) throw new UsageError(`--mqtt-url must be mqtt:// or mqtts://, not ${mqttUrl}`);
    // IoT Core admits a PEP only through the feed's custom authorizer, which the connection must name.
    if (/\.amazonaws\.com(\.cn)?(:\d+)?(\/|$)/.test(mqttUrl) && !mqttAuthorizer)
      throw new UsageError(
        "AWS IoT Core needs the feed's authorizer (--mqtt-authorizer or SIMROOT_PEP_MQTT_AUTHORIZER: the deploy output feedAuthorizer)",
      );
  }
  const port = integer("--port", values.port ?? env.SIMROOT_PEP_PORT, 9191, 0, 65535);
  const adminPort = integer("--admin-port", values["admin-port"] ?? env.SIMROOT_PEP_ADMIN_PORT, 9192, 0, 65535);
  if (port !== 0 && port === adminPort)
    throw new UsageError("--port and --admin-port must differ: every path on the ext_authz listener is a check");
  return {
    url,
    apiKey,
    publicKeyFiles,
    tenantId,
    clockSkewSeconds: integer("--clock-skew", values["clock-skew"] ?? env.SIMROOT_PEP_CLOCK_SKEW, 1, 0, maxClockSkewSeconds),
    selector: selectorOf(values.selector ?? env.SIMROOT_PEP_SELECTOR),
    feedMode,
    mqttUrl,
    mqttAuthorizer,
    statePath: values.state ?? env.SIMROOT_PEP_STATE ?? "simroot-pep-state.json",
    port,
    adminPort,
    host: values.host ?? env.SIMROOT_PEP_HOST ?? "127.0.0.1",
    adminHost: values["admin-host"] ?? env.SIMROOT_PEP_ADMIN_HOST ?? "127.0.0.1",
    breakGlass,
    flowIntervalSeconds: integer("--flow-interval", values["flow-interval"] ?? env.SIMROOT_PEP_FLOW_INTERVAL, 10, 0, 3600),
    pepId: values["pep-id"] ?? env.SIMROOT_PEP_ID ?? hostname().slice(0, 128),
    xffTrustedHops: integer("--xff-trusted-hops", values["xff-trusted-hops"] ?? env.SIMROOT_PEP_XFF_TRUSTED_HOPS, 0, 0, 16),
  };
}
