/**
 * Typed settings, read from the environment in this one place (house rule: nothing else
 * in core reads `process.env`). In AWS, infra sets the same variables on every function.
 */
import { tableKeys, type TableKey } from "./platform/table-keys.ts";

export type TableNames = Readonly<Record<TableKey, string>>;

const env = (name: string): string | undefined => {
  const value = process.env[name];
  return value === undefined || value === "" ? undefined : value;
};

/** `SIMROOT_TABLE_IDENTITY`, ... or `<prefix><key>` when a prefix is given (tests, local). */
export function tableNames(prefix = env("SIMROOT_TABLE_PREFIX") ?? "simroot-"): TableNames {
  return Object.fromEntries(tableKeys.map((key) => [key, env(`SIMROOT_TABLE_${key.toUpperCase()}`) ?? `${prefix}${key}`])) as Record<
    TableKey,
    string
  >;
}

export interface DynamoSettings {
  /** Unset means the SDK's default AWS endpoint resolution (real DynamoDB). */
  readonly endpoint: string | undefined;
  readonly region: string;
  /** Other SDK timeouts than the defaults (core `timeouts`; DynamoDB Local gets a longer request timeout). */
  readonly sdk?: import("./store/sdk-settings.ts").SdkTimeouts;
}

export function dynamoSettings(): DynamoSettings {
  return {
    endpoint: env("DYNAMODB_ENDPOINT"),
    region: env("AWS_REGION") ?? env("AWS_DEFAULT_REGION") ?? "us-east-1",
  };
}

export const busName = (): string => env("SIMROOT_BUS_NAME") ?? "simroot";

/**
 * The credentials every client sends DynamoDB Local (any are accepted). Started without `-sharedDb`, as the tests' one
 * instance is, DynamoDB Local keeps a database per access key: the tests give each file its own
 * (`SIMROOT_DYNAMODB_LOCAL_KEY`), since its writes to a table with a stream cost time in proportion to every stream
 * record in the database (review 146: a test file late in the run took 15 times as long as alone).
 */
export const dynamoLocalCredentials = () => ({ accessKeyId: env("SIMROOT_DYNAMODB_LOCAL_KEY") ?? "local", secretAccessKey: "local" });

/** The KMS key (ECC_NIST_EDWARDS25519) that signs the feed in AWS. */
export const feedKmsKeyId = (): string | undefined => env("SIMROOT_FEED_KMS_KEY_ID");

/** The symmetric KMS key that seals kept secrets (webhook signing keys) in AWS. */
export const secretsKmsKeyId = (): string | undefined => env("SIMROOT_SECRETS_KMS_KEY_ID");

/** Elsewhere, the file holding the local secrets key (32 bytes, base64; created on first use). */
export const secretsKeyFile = (): string | undefined => env("SIMROOT_SECRETS_KEY_FILE");

/** In AWS, each rule's consumer function (JSON, rule -> function name): what a redrive invokes. */
export const consumerFunctions = (): Record<string, string> | undefined => {
  const named = env("SIMROOT_CONSUMER_FUNCTIONS");
  return named ? (JSON.parse(named) as Record<string, string>) : undefined;
};

/** In AWS, each rule's dead-letter queue (JSON, queue ARN -> rule): which rule a drained message failed at. */
export const deadLetterQueueRules = (): Record<string, string> =>
  JSON.parse(env("SIMROOT_DEAD_LETTER_QUEUES") ?? "{}") as Record<string, string>;

/** AWS IoT Core's data endpoint (`iot:Data-ATS`), the feed's push channel in AWS; unset: no push channel. */
export const iotDataEndpoint = (): string | undefined => env("SIMROOT_IOT_DATA_ENDPOINT");

/** Overrides how often an instance reads a watched tenant's head (500 ms without a push channel, 5 s with one). */
export const feedHeadPollMs = (): number | undefined => Number(env("SIMROOT_FEED_HEAD_POLL_MS")) || undefined;

/** The applier's queue in AWS, whose depth bounds ingestion (see ingest/backlog.ts); unset: unbounded. */
export const applierQueueUrl = (): string | undefined => env("SIMROOT_APPLIER_QUEUE_URL");

/** Ingestion answers 503 once this many deliveries wait for the applier. */
export const ingestMaxBacklog = (): number => Number(env("SIMROOT_INGEST_MAX_BACKLOG")) || 10_000;

/**
 * SIMROOT_BUS_MAX_ENTRY_BYTES: the largest entry the local bus takes (local bus `localBusMaxEntryBytes`), to match the
 * deployed bus's (1048576 for one that takes 1 MB); unset or not a positive whole number: the local bus's default.
 */
export const busMaxEntryBytes = (): number | undefined => {
  const value = Number(env("SIMROOT_BUS_MAX_ENTRY_BYTES"));
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
};

/** SIMROOT_WEBHOOK_TARGETS: where outbound webhooks may go, "public" addresses or "any" (webhook/target.ts); unset: the runtime's default. */
export const webhookTargets = (): "public" | "any" | undefined => {
  const value = env("SIMROOT_WEBHOOK_TARGETS");
  return value === "public" || value === "any" ? value : undefined;
};

/** A tenant's rate limits (requests a minute, `rateLimits` in its settings), by name. */
export interface RateLimitCeilings {
  readonly apiKeyPerMinute: number;
  readonly pepKeyPerMinute: number;
  readonly sourcePerMinute: number;
}

/** The setting that holds each ceiling. */
export const rateLimitCeilingSettings = {
  apiKeyPerMinute: "SIMROOT_RATE_LIMIT_MAX_API_KEY_PER_MINUTE",
  pepKeyPerMinute: "SIMROOT_RATE_LIMIT_MAX_PEP_KEY_PER_MINUTE",
  sourcePerMinute: "SIMROOT_RATE_LIMIT_MAX_SOURCE_PER_MINUTE",
} as const satisfies Record<keyof RateLimitCeilings, string>;

/**
 * Ten times the tenants' default limits (6,000 a minute per API key and per source), five times for enforcement point
 * keys (120,000: a fleet shares one key): 1,000 requests a second per key or source, 10,000 per enforcement point key.
 */
export const defaultRateLimitCeilings: RateLimitCeilings = { apiKeyPerMinute: 60_000, pepKeyPerMinute: 600_000, sourcePerMinute: 60_000 };

/**
 * The deployment's ceilings on the rate limits a tenant admin sets (review 73: an admin raised its own without bound):
 * a higher setting is refused, and a limit stored above a ceiling (set before it was lowered) is held to it.
 */
export function rateLimitCeilings(): RateLimitCeilings {
  return perMinuteSettings(rateLimitCeilingSettings, defaultRateLimitCeilings);
}

/** Settings of requests a minute, each a whole number of at least 1 when set (else its default). */
function perMinuteSettings<Name extends string>(variables: Record<Name, string>, defaults: Record<Name, number>): Record<Name, number> {
  return Object.fromEntries(
    Object.entries<string>(variables).map(([name, variable]) => {
      const value = env(variable);
      const limit = Number(value ?? defaults[name as Name]);
      if (!Number.isInteger(limit) || limit < 1)
        throw new Error(`${variable} is ${JSON.stringify(value)}: a whole number of requests a minute, at least 1`);
      return [name, limit];
    }),
  ) as Record<Name, number>;
}

/** The limits counted: each of a tenant's `rateLimits` held to the deployment's ceiling (lower when one is set above it). */
export function appliedRateLimits(limits: RateLimitCeilings, ceilings: RateLimitCeilings = rateLimitCeilings()): RateLimitCeilings {
  return {
    apiKeyPerMinute: Math.min(limits.apiKeyPerMinute, ceilings.apiKeyPerMinute),
    pepKeyPerMinute: Math.min(limits.pepKeyPerMinute, ceilings.pepKeyPerMinute),
    sourcePerMinute: Math.min(limits.sourcePerMinute, ceilings.sourcePerMinute),
  };
}

/**
 * What a tenant's requests may add up to, a minute, over all its credentials of a kind (review 108: limits counted per key
 * and per source let a tenant with many keys or sources take as much of the deployment as it liked). Set by the
 * operator, not by a tenant: the API keys other than enforcement points', the enforcement points' keys, the sources.
 */
export interface TenantRateLimits {
  readonly apiKeysPerMinute: number;
  readonly pepKeysPerMinute: number;
  readonly sourcesPerMinute: number;
}

/** The setting that holds each tenant-wide limit. */
export const tenantRateLimitSettings = {
  apiKeysPerMinute: "SIMROOT_RATE_LIMIT_TENANT_API_KEYS_PER_MINUTE",
  pepKeysPerMinute: "SIMROOT_RATE_LIMIT_TENANT_PEP_KEYS_PER_MINUTE",
  sourcesPerMinute: "SIMROOT_RATE_LIMIT_TENANT_SOURCES_PER_MINUTE",
} as const satisfies Record<keyof TenantRateLimits, string>;

/**
 * A quarter of the production API's stage throttle for the API keys (500 requests a second; one key's default is 100),
 * half of it for the sources (1,000 webhooks a second, each up to 250 facts): one tenant cannot take the gateway from
 * the others. The enforcement points' keys 100,000 a second, sized for 10,000 PEPs of a tenant asking again after every
 * change on a deployment with no gateway in front (locally); in AWS the stage throttle bounds them first, and PEPs there
 * are told of changes by the push channel.
 */
export const defaultTenantRateLimits: TenantRateLimits = {
  apiKeysPerMinute: 30_000,
  pepKeysPerMinute: 6_000_000,
  sourcesPerMinute: 60_000,
};

/** The tenant-wide limits this deployment counts. */
export const tenantRateLimits = (): TenantRateLimits => perMinuteSettings(tenantRateLimitSettings, defaultTenantRateLimits);

/** The fewest days audit records may stay: the archive's 30-day lead, the feed's 7-day delta history, and a margin. */
export const minAuditRetentionDays = 40;

/**
 * Days audit records (and feed versions) stay in DynamoDB before its TTL removes them; the archiver
 * copies them out 30 days before. Each record keeps the expiry set when it was written: raising the
 * setting applies to what is written from then on.
 */
export function auditRetentionDays(): number {
  const days = Number(env("SIMROOT_AUDIT_RETENTION_DAYS")) || 90;
  if (days < minAuditRetentionDays) {
    throw new Error(`SIMROOT_AUDIT_RETENTION_DAYS is ${days}: at least ${minAuditRetentionDays} (the archive needs 30 days before expiry)`);
  }
  return days;
}

/** Public keys (PEM, one after another) of feed signing keys replaced by a rotation, still trusted for what they signed. */
export const retiredFeedPublicKeys = (): string[] =>
  (env("SIMROOT_FEED_RETIRED_PUBLIC_KEYS") ?? "").match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];

/** The S3 bucket of the audit archive (AWS). */
export const auditArchiveBucket = (): string | undefined => env("SIMROOT_AUDIT_ARCHIVE_BUCKET");

export interface LocalSettings {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly dynamoPort: number | undefined;
  /** Another DynamoDB to use instead of starting DynamoDB Local. */
  readonly dynamoEndpoint: string | undefined;
  readonly logRequests: boolean;
  /** The local feed hub's MQTT port, for PEPs on the push channel; unset, a free one at each start. */
  readonly feedMqttPort: number | undefined;
}

/** A port number from a setting: an integer from 1 to 65535, or a message naming the setting. */
function portSetting(name: string, value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`${name} is ${JSON.stringify(value)}: a port from 1 to 65535`);
  return port;
}

export function localSettings(): LocalSettings {
  const dynamoPort = env("DYNAMODB_LOCAL_PORT");
  const feedMqttPort = env("SIMROOT_FEED_MQTT_PORT");
  return {
    feedMqttPort: feedMqttPort ? portSetting("SIMROOT_FEED_MQTT_PORT", feedMqttPort) : undefined,
    port: Number(env("PORT") ?? 3000),
    host: env("HOST") ?? "127.0.0.1",
    dataDir: env("SIMROOT_DATA_DIR") ?? ".data",
    dynamoPort: dynamoPort === undefined ? undefined : Number(dynamoPort),
    dynamoEndpoint: env("DYNAMODB_ENDPOINT"),
    logRequests: env("SIMROOT_LOG_REQUESTS") !== "0",
  };
}

/**
 * The integrations a deployment turns on, each bound to one tenant (an AWS IoT account, a
 * tailnet, a SIEM belong to one fleet operator). Unset means the integration is off and its
 * consumer does nothing.
 */
export interface IntegrationSettings {
  readonly iot?: { readonly tenantId: string; readonly endpoint?: string; readonly prefix: string; readonly mqttHost?: string };
  readonly tailscale?: { readonly tenantId: string; readonly apiUrl: string; readonly tailnet: string; readonly apiKey: string };
  readonly siem?: { readonly tenantId: string; readonly url: string; readonly token?: string };
}

/**
 * `SIMROOT_IOT_PREFIX`: what names simroot's own IoT resources (its state groups, thing type and policies), and so what
 * its IAM grants name (platform/integrations.ts `integrationPermissionsFor`, review 160: they named `simroot-*` whatever
 * the prefix, and every sync under another was refused). Letters, digits, `_` and `-` only: a `*` would widen the grants.
 */
export function iotPrefix(value = env("SIMROOT_IOT_PREFIX")): string {
  if (value === undefined) return "simroot-";
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(value))
    throw new Error(`SIMROOT_IOT_PREFIX is ${JSON.stringify(value)}: letters, digits, _ and - only (at most 64)`);
  return value;
}

/**
 * A URL an integration sends its token to (the SIEM's collector, Tailscale's API): HTTPS, or plain HTTP to this machine
 * only (a local collector, the tests'). Review 160: a mistyped `http://` sent the bearer token in clear.
 */
export function tokenUrl(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!URL.canParse(value)) throw new Error(`${name} is not a URL: ${JSON.stringify(value)}`);
  const url = new URL(value);
  const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback))
    throw new Error(`${name} is ${JSON.stringify(value)}: https only (its token is sent there), or http to this machine`);
  return value;
}

export function integrationSettings(): IntegrationSettings {
  const iotTenant = env("SIMROOT_IOT_TENANT_ID");
  const tailscaleTenant = env("SIMROOT_TAILSCALE_TENANT_ID");
  const siemTenant = env("SIMROOT_SIEM_TENANT_ID");
  return {
    ...(iotTenant
      ? {
          iot: {
            tenantId: iotTenant,
            endpoint: env("SIMROOT_IOT_ENDPOINT"),
            prefix: iotPrefix(),
            mqttHost: env("SIMROOT_IOT_MQTT_HOST"),
          },
        }
      : {}),
    ...(tailscaleTenant && env("SIMROOT_TAILSCALE_API_KEY")
      ? {
          tailscale: {
            tenantId: tailscaleTenant,
            apiUrl: tokenUrl("SIMROOT_TAILSCALE_API_URL", env("SIMROOT_TAILSCALE_API_URL")) ?? "https://api.tailscale.com",
            tailnet: env("SIMROOT_TAILSCALE_TAILNET") ?? "-",
            apiKey: env("SIMROOT_TAILSCALE_API_KEY")!,
          },
        }
      : {}),
    ...(siemTenant && env("SIMROOT_SIEM_URL")
      ? { siem: { tenantId: siemTenant, url: tokenUrl("SIMROOT_SIEM_URL", env("SIMROOT_SIEM_URL"))!, token: env("SIMROOT_SIEM_TOKEN") } }
      : {}),
  };
}

/**
 * The tenant each integration's consumer serves, by rule (absent: the integration is off). Its
 * rule matches only that tenant's events (`deployedPattern` in platform/rules.ts).
 */
export function integrationTenants(settings?: IntegrationSettings) {
  // Without settings, the tenants alone (and when each integration is on), not the rest checked: a setting a consumer
  // refuses (a plain-http URL, a prefix that would widen its grants) fails that consumer's deliveries, not the local bus
  // every rule's pattern is read by (review 161).
  if (!settings) {
    const iot = env("SIMROOT_IOT_TENANT_ID");
    const tailscale = env("SIMROOT_TAILSCALE_API_KEY") ? env("SIMROOT_TAILSCALE_TENANT_ID") : undefined;
    const siem = env("SIMROOT_SIEM_URL") ? env("SIMROOT_SIEM_TENANT_ID") : undefined;
    return { iotSync: iot, postureSync: tailscale, siemExport: siem };
  }
  return { iotSync: settings.iot?.tenantId, postureSync: settings.tailscale?.tenantId, siemExport: settings.siem?.tenantId };
}
