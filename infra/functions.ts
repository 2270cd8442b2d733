/**
 * Every function's arguments from the platform definition (`packages/core/src/platform/
 * functions.ts`): handler, timeout, memory, bundling, and its IAM permissions, one statement
 * per resource with every action named. Nothing is `link`ed: SST's links grant `dynamodb:*`,
 * `events:*` and `sqs:*`, and core reads its settings from the environment anyway.
 */
import { functions, grantsOf, type FunctionDefinition, type FunctionName, type Grant } from "../packages/core/src/platform/functions.ts";
import { rateLimitCeilingSettings, tenantRateLimitSettings } from "../packages/core/src/config.ts";
import { bundling } from "../packages/core/src/platform/limits.ts";
import type { tableKeys } from "../packages/core/src/platform/tables.ts";
import { tableEnvironment, dynamoTables } from "./database";
import { bus, busEnvironment } from "./event-bus";
import { feedKey, feedKeyEnvironment } from "./feed-key";
import { secretsKey, secretsKeyEnvironment } from "./secrets-key";
import { applierQueue, applierQueueEnvironment } from "./applier-queue";
import { auditArchive, auditArchiveEnvironment } from "./audit-archive-bucket";
import { feedChannelEnvironment } from "./iot-endpoint";
import { stage } from "./stage";

/** Runtime of every function. */
export const runtime = "nodejs24.x" satisfies sst.aws.FunctionArgs["runtime"];

/** `consumers/operator-events.ts` -> `functions/src/consumers/operator-events.handler`. */
export function handlerPath(module: string): string {
  return `functions/src/${module.replace(/\.[cm]?[jt]s$/, "")}.handler`;
}

/** Resources that exist only once the rules are subscribed (bus.ts fills them in). */
export interface LateResources {
  readonly deadLetterQueueArns?: $util.Input<string>[];
  readonly consumerArns?: $util.Input<string>[];
}

function resourcesOf(grant: Grant, late: LateResources): $util.Input<string>[] {
  const on = grant.on;
  if ("table" in on) {
    const arn = dynamoTables[on.table].arn;
    return on.indexes ? [arn, $interpolate`${arn}/index/*`] : [arn];
  }
  if ("bus" in on) return [bus.arn];
  if ("feedKey" in on) return [feedKey.arn];
  if ("secretsKey" in on) return [secretsKey.arn];
  if ("deadLetterQueues" in on) return late.deadLetterQueueArns ?? [];
  if ("auditArchive" in on) return [$interpolate`${auditArchive.arn}/*`];
  if ("applierQueue" in on) return [applierQueue.arn];
  if ("feedTopics" in on)
    return [$interpolate`arn:aws:iot:${aws.getRegionOutput().name}:${aws.getCallerIdentityOutput().accountId}:topic/simroot/*`];
  return late.consumerArns ?? [];
}

/** An IAM statement infra adds for what AWS does with the function's role (not its code). */
export interface RoleStatement {
  readonly actions: string[];
  readonly resources: $util.Input<string>[];
}

export function permissionsOf(name: FunctionName, late: LateResources = {}): RoleStatement[] {
  return grantsOf(functions[name]).map((grant) => ({ actions: [...grant.actions], resources: resourcesOf(grant, late) }));
}

/**
 * The settings an operator sets in the deploying shell (README "Configuration"), to the functions that read them: the
 * audit retention to those that write or archive audit records, the retired feed keys to those that verify the audit
 * chain, the ingestion backlog bound to those that answer ingestion, the rate limit ceilings and tenant-wide limits to the API's functions (each
 * holds its requests to the tenant's limits, and the management API refuses a limit above its ceiling). Unset, each
 * function takes core's default.
 */
function operatorSettings(definition: FunctionDefinition): Record<string, string> {
  const given = (variable: string, reads: boolean | undefined) =>
    reads && process.env[variable] ? { [variable]: process.env[variable]! } : {};
  return {
    ...given("SIMROOT_AUDIT_RETENTION_DAYS", definition.tables.audit?.includes("PutItem") || definition.auditArchive),
    ...given("SIMROOT_FEED_RETIRED_PUBLIC_KEYS", definition.verifiesAudit),
    ...given("SIMROOT_INGEST_MAX_BACKLOG", definition.backlogQueue),
    ...Object.fromEntries(
      [...Object.values(rateLimitCeilingSettings), ...Object.values(tenantRateLimitSettings)].flatMap((variable) =>
        Object.entries(given(variable, definition.routes !== undefined)),
      ),
    ),
  };
}

/** The arguments of a function: everything but what only its caller knows (links to late resources). */
export function functionArgs(name: FunctionName, late: LateResources = {}, role: RoleStatement[] = []): sst.aws.FunctionArgs {
  const definition = functions[name];
  const tables = Object.keys(definition.tables) as (typeof tableKeys)[number][];
  return {
    handler: handlerPath(definition.handler),
    runtime,
    timeout: `${definition.timeoutSeconds} seconds`,
    memory: `${definition.memoryMb} MB`,
    architecture: "arm64",
    permissions: [...permissionsOf(name, late), ...role],
    ...("files" in definition && definition.files ? { copyFiles: definition.files.map((file) => ({ ...file })) } : {}),
    environment: {
      ...tableEnvironment(tables),
      ...(definition.publishes ? busEnvironment : {}),
      ...(definition.feedKey.length > 0 ? feedKeyEnvironment : {}),
      ...(definition.secretsKey.length > 0 ? secretsKeyEnvironment : {}),
      ...("auditArchive" in definition && definition.auditArchive ? auditArchiveEnvironment : {}),
      ...(definition.feedNotices ? feedChannelEnvironment : {}),
      ...(definition.backlogQueue ? applierQueueEnvironment : {}),
      ...operatorSettings(definition),
      POWERTOOLS_SERVICE_NAME: `simroot-${name}`,
    },
    logging: { format: "json", retention: stage.logRetention },
    nodejs: {
      format: "esm",
      minify: bundling.minify,
      esbuild: { external: [...bundling.external] },
      plugins: "infra/esbuild-plugins.mjs",
    },
  };
}
