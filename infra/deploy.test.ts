/**
 * What `sst deploy` would create, read before a deploy: the app (`sst.config.ts`, `infra/`) runs on SST's own platform
 * code against Pulumi's resource mocks (test/support/sst-synth.ts) for four variants (`production`, `dev`, and
 * `production` with the IoT integration or with provisioned capacity), and the resources it registers are checked
 * against the platform definition (packages/core/src/platform) and against each function's bundle. No AWS account is
 * needed. What AWS's APIs refuse on create (the limits and ranges the services document) is checked; what AWS would
 * do beyond that (an account's quotas already used, IAM's propagation, a deploy itself) is not tested here.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { functionNames, functions, grantsOf, type FunctionDefinition, type FunctionName } from "../packages/core/src/platform/functions.ts";
import { integrationPermissions } from "../packages/core/src/platform/integrations.ts";
import { applierQueue, streamReaders, timeouts } from "../packages/core/src/platform/limits.ts";
import { metricDefinitions, metricNamespace } from "../packages/core/src/platform/metrics.ts";
import { deployedPattern, retryPolicy, rules, type RuleName } from "../packages/core/src/platform/rules.ts";
import { tables as tableDefinitions } from "../packages/core/src/platform/tables.ts";
import { bundleFunction } from "../scripts/bundle/build.ts";
import { synthesize, type Synthesized, type SynthesizedResource } from "../test/support/sst-synth.ts";
import { sstPluginBridge } from "../test/support/sst-plugin-bridge.ts";

const root = join(import.meta.dirname, "..");
const execFileAsync = promisify(execFile);
/** Every integration configured in the deploying shell (the IoT integration's custom authorizer is deployed only then). */
const integrationSettings = {
  iot: { SIMROOT_IOT_TENANT_ID: "ten_synth", SIMROOT_IOT_MQTT_HOST: "synth-ats.iot.us-east-1.amazonaws.com", SIMROOT_IOT_PREFIX: "fleet-" },
  tailscale: { SIMROOT_TAILSCALE_TENANT_ID: "ten_synth", SIMROOT_TAILSCALE_API_KEY: "tskey-synth", SIMROOT_TAILSCALE_TAILNET: "synth" },
  siem: { SIMROOT_SIEM_TENANT_ID: "ten_synth", SIMROOT_SIEM_URL: "https://siem.example/collect", SIMROOT_SIEM_TOKEN: "siem-synth" },
} as const;
/** The functions each integration's settings are for (each reads its own: core config.ts `integrationSettings`). */
const integrationFunctions: Record<keyof typeof integrationSettings, readonly FunctionName[]> = {
  iot: ["iotSync", "iotAuthorizer"],
  tailscale: ["postureSync"],
  siem: ["siemExport"],
};
/** What an operator may set in the deploying shell (README "Configuration"): each reaches the functions that read it. */
const operatorSettings = {
  SIMROOT_AUDIT_RETENTION_DAYS: "120",
  SIMROOT_INGEST_MAX_BACKLOG: "20000",
  SIMROOT_RATE_LIMIT_MAX_API_KEY_PER_MINUTE: "30000",
  SIMROOT_RATE_LIMIT_MAX_PEP_KEY_PER_MINUTE: "300000",
  SIMROOT_RATE_LIMIT_MAX_SOURCE_PER_MINUTE: "30000",
  SIMROOT_RATE_LIMIT_TENANT_API_KEYS_PER_MINUTE: "60000",
  SIMROOT_RATE_LIMIT_TENANT_PEP_KEYS_PER_MINUTE: "3000000",
  SIMROOT_RATE_LIMIT_TENANT_SOURCES_PER_MINUTE: "150000",
  SIMROOT_FEED_RETIRED_PUBLIC_KEYS:
    "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAsynthsynthsynthsynthsynthsynthsynthsynthsyn=\n-----END PUBLIC KEY-----",
} as const;
const stages = {
  production: {},
  dev: {},
  "production with the integrations": {
    SIMROOT_CONSUMER_CONCURRENCY: "20",
    ...integrationSettings.iot,
    ...integrationSettings.tailscale,
    ...integrationSettings.siem,
    ...operatorSettings,
  },
  "production with provisioned capacity": { SIMROOT_PROVISIONED_CAPACITY: "1" },
} as const;
type Stage = keyof typeof stages;
const synthesized = new Map<Stage, Synthesized>();
/** Functions deployed only when an integration is configured. */
const onlyWithIntegration: readonly FunctionName[] = ["iotAuthorizer"];

beforeAll(async () => {
  // SST's platform code, as `npm run typecheck:infra` installs it (a no-op when it is there and matches the sst package).
  // Asynchronous and bounded, so that the hook's timeout can end a slow first install (it fetches from npm).
  await execFileAsync(process.execPath, [join(root, "scripts", "sst-install.ts")], { cwd: root, timeout: 200_000 }).catch(
    (error: { stderr?: string; message: string }) => {
      throw new Error(`sst install failed: ${error.stderr ?? error.message}`);
    },
  );

  for (const [name, app] of await Promise.all(
    (Object.entries(stages) as [Stage, Record<string, string>][]).map(
      async ([name, env]) => [name, await synthesize(name.startsWith("dev") ? "dev" : "production", env)] as const,
    ),
  )) {
    synthesized.set(name, app);
  }
}, 240_000);

const of = (app: Synthesized, type: string) => app.resources.filter((resource) => resource.type === type);
const inputs = <T = Record<string, unknown>>(resource: SynthesizedResource) => resource.inputs as T;
const lastPart = (arn: string) => arn.split("/").at(-1)!;
/** The resource of `type` whose output (its ARN, name or URL, as the mocks answer them) is `value`. */
const byOutput = (app: Synthesized, type: string, key: "arn" | "name" | "url", value: string | undefined) =>
  of(app, type).find((resource) => value !== undefined && resource.outputs[key] === value);
/** Where a queue's redrive policy moves what it received too often. */
const redriveTarget = (queue: SynthesizedResource) => {
  const policy = inputs<{ redrivePolicy?: string }>(queue).redrivePolicy;
  return policy === undefined ? undefined : (JSON.parse(policy) as { deadLetterTargetArn: string; maxReceiveCount: number });
};
/** The queue reported facts wait in for the applier. */
const applierQueueOf = (app: Synthesized) => of(app, "aws:sqs/queue:Queue").find((queue) => queue.name.startsWith("ApplierQueue"))!;
/** The policy documents a role holds: its inline policies, and role policies attached to it (infra/integrations.ts). */
const rolePolicies = (app: Synthesized, roleName: string): string[] => {
  const role = of(app, "aws:iam/role:Role").find((each) => inputs<{ name: string }>(each).name === roleName);
  const inline = role ? (inputs<{ inlinePolicies?: { policy: string }[] }>(role).inlinePolicies ?? []) : [];
  const attached = of(app, "aws:iam/rolePolicy:RolePolicy")
    .map((policy) => inputs<{ role: string; policy: string }>(policy))
    .filter((policy) => policy.role === roleName || lastPart(policy.role) === roleName);
  return [...inline, ...attached].map((policy) => policy.policy);
};
/** A policy's statements. */
const statementsOf = (policy: string) => (JSON.parse(policy) as { Statement: Statement[] }).Statement;

interface Statement {
  Effect: string;
  Action: string[] | string;
  Resource?: string[] | string;
  Principal?: Record<string, string[] | string>;
  Condition?: Record<string, Record<string, string[] | string>>;
}
const list = <T>(value: T[] | T | undefined): T[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

interface DeployedFunction {
  readonly resource: SynthesizedResource;
  /** The platform definition's name (from `POWERTOOLS_SERVICE_NAME`, which infra sets from it). */
  readonly platformName: FunctionName | undefined;
  readonly name: string;
  readonly statements: Statement[];
  readonly trust: Statement[];
  /** The managed policies attached to its role. */
  readonly managed: string[];
  /** Its environment variables. */
  readonly environment: Record<string, string>;
}

function deployedFunctions(app: Synthesized): DeployedFunction[] {
  const roles = new Map(of(app, "aws:iam/role:Role").map((role) => [inputs<{ name: string }>(role).name, role]));
  return of(app, "aws:lambda/function:Function").map((resource) => {
    const fn = inputs<{ name: string; role: string; environment?: { variables?: Record<string, string> } }>(resource);
    const environment = fn.environment?.variables ?? {};
    const service = environment.POWERTOOLS_SERVICE_NAME?.replace(/^simroot-/, "");
    const roleName = lastPart(fn.role);
    const role = inputs<{ assumeRolePolicy: string; managedPolicyArns?: string[] }>(roles.get(roleName)!);
    const statements = rolePolicies(app, roleName).flatMap(statementsOf);
    return {
      resource,
      platformName: functionNames.includes(service as FunctionName) ? (service as FunctionName) : undefined,
      name: fn.name,
      statements,
      trust: statementsOf(role.assumeRolePolicy),
      managed: role.managedPolicyArns ?? [],
      environment,
    };
  });
}

/** The names each metric dimension takes in the app: a function's, a queue's, a table's, the API's id, core's service names. */
function namesByDimension(app: Synthesized): Record<string, Set<string>> {
  const outputs = (type: string, key: "name" | "id") => new Set(of(app, type).map((resource) => resource.outputs[key]));
  return {
    FunctionName: outputs("aws:lambda/function:Function", "name"),
    QueueName: outputs("aws:sqs/queue:Queue", "name"),
    TableName: outputs("aws:dynamodb/table:Table", "name"),
    GlobalSecondaryIndexName: new Set(
      of(app, "aws:dynamodb/table:Table").flatMap(
        (table) => inputs<{ globalSecondaryIndexes?: { name: string }[] }>(table).globalSecondaryIndexes?.map((index) => index.name) ?? [],
      ),
    ),
    // DynamoDB's operations (the Operation dimension of its request metrics).
    Operation: new Set([
      "GetItem",
      "PutItem",
      "UpdateItem",
      "DeleteItem",
      "Query",
      "Scan",
      "BatchGetItem",
      "BatchWriteItem",
      "TransactWriteItems",
      "TransactGetItems",
    ]),
    ApiId: outputs("aws:apigatewayv2/api:Api", "id"),
    service: new Set(functionNames.map((name) => `simroot-${name}`)),
  };
}

/** The queues failed events go to: the rules' targets' dead-letter queues, asynchronous invocations' and queues' redrives. */
function deadLetterQueues(app: Synthesized): string[] {
  const arns = new Set<string>();
  for (const target of of(app, "aws:cloudwatch/eventTarget:EventTarget")) {
    const arn = inputs<{ deadLetterConfig?: { arn: string } }>(target).deadLetterConfig?.arn;
    if (arn) arns.add(arn);
  }
  for (const config of of(app, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")) {
    const arn = inputs<{ destinationConfig?: { onFailure?: { destination: string } } }>(config).destinationConfig?.onFailure?.destination;
    if (arn) arns.add(arn);
  }
  for (const queue of of(app, "aws:sqs/queue:Queue")) {
    const redrive = redriveTarget(queue);
    if (redrive) arns.add(redrive.deadLetterTargetArn);
  }
  return [...arns].map((arn) => byOutput(app, "aws:sqs/queue:Queue", "arn", arn)!.outputs.name);
}

/** The queue has one policy (a queue holds one), of one statement: `rule`, through EventBridge, may send to it, and nothing else. */
function expectOnlyRuleSends(app: Synthesized, queue: SynthesizedResource, rule: SynthesizedResource) {
  const policies = of(app, "aws:sqs/queuePolicy:QueuePolicy")
    .map((policy) => inputs<{ queueUrl: string; policy: string }>(policy))
    .filter((policy) => policy.queueUrl === queue.outputs.url);
  expect({ queue: queue.name, policies: policies.length }).toEqual({ queue: queue.name, policies: 1 });
  const statements = statementsOf(policies[0]!.policy);
  expect(
    statements.map((statement) => ({
      effect: statement.Effect,
      actions: list(statement.Action),
      principals: list(statement.Principal?.Service),
      resources: list(statement.Resource),
      sources: list(statement.Condition?.ArnEquals?.["aws:SourceArn"]),
      conditions: Object.keys(statement.Condition ?? {}),
    })),
  ).toEqual([
    {
      effect: "Allow",
      actions: ["sqs:SendMessage"],
      principals: ["events.amazonaws.com"],
      resources: [queue.outputs.arn],
      sources: [rule.outputs.arn],
      conditions: ["ArnEquals"],
    },
  ]);
}

describe.each(Object.keys(stages) as Stage[])("%s, as SST would deploy it", (name) => {
  const app = () => synthesized.get(name)!;
  const stage = name.startsWith("dev") ? "dev" : "production";
  const integrated = name.includes("integration");
  const provisioned = name.includes("provisioned");

  it("deploys only functions the platform definition declares, each of them once", () => {
    const deployed = deployedFunctions(app());
    expect(deployed.filter((fn) => fn.platformName === undefined).map((fn) => fn.resource.name)).toEqual([]);
    const expected = functionNames.filter((fn) => integrated || !onlyWithIntegration.includes(fn));
    expect(deployed.map((fn) => fn.platformName).sort()).toEqual([...expected].sort());
  });

  it("lets only the Lambda service assume a function's role", () => {
    for (const fn of deployedFunctions(app())) {
      expect({ function: fn.resource.name, principals: fn.trust.map((statement) => statement.Principal) }).toEqual({
        function: fn.resource.name,
        principals: [{ Service: ["lambda.amazonaws.com"] }],
      });
    }
  });

  it("grants each function's role its platform grants on the resources they name, and beyond them only what AWS does with the role", () => {
    const deployed = deployedFunctions(app());
    const mappings = of(app(), "aws:lambda/eventSourceMapping:EventSourceMapping").map((mapping) =>
      inputs<{ eventSourceArn: string; functionName: string; destinationConfig?: { onFailure?: { destinationArn?: string } } }>(mapping),
    );
    const targets = of(app(), "aws:cloudwatch/eventTarget:EventTarget").map((target) =>
      inputs<{ arn: string; deadLetterConfig?: { arn: string } }>(target),
    );
    const invokeConfigs = of(app(), "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig").map((config) =>
      inputs<{ functionName: string; destinationConfig?: { onFailure?: { destination: string } } }>(config),
    );
    const redrives = new Map(
      of(app(), "aws:sqs/queue:Queue").map((queue) => [queue.outputs.name, redriveTarget(queue)?.deadLetterTargetArn]),
    );
    const tableOf = (resource: string) => /:[Tt]able\/([^/]+)/.exec(resource)?.[1];
    for (const fn of deployed.filter((each) => each.platformName)) {
      const name = fn.platformName!;
      const { environment } = fn;
      const declared = [
        ...grantsOf(functions[name]).flatMap((grant) => grant.actions),
        ...((integrationPermissions as Record<string, readonly { actions: readonly string[] }[]>)[name] ?? []).flatMap((statement) => [
          ...statement.actions,
        ]),
      ];
      const granted = fn.statements.flatMap((statement) => list(statement.Action));
      expect({ function: name, missing: declared.filter((action) => !granted.includes(action)) }).toEqual({ function: name, missing: [] });
      expect({ function: name, managed: fn.managed.map(lastPart) }).toEqual({ function: name, managed: ["AWSLambdaBasicExecutionRole"] });
      for (const statement of fn.statements) {
        const resources = list(statement.Resource);
        expect({ function: name, actions: statement.Action, named: resources.length > 0 && !resources.includes("*") }).toEqual({
          function: name,
          actions: statement.Action,
          named: true,
        });
      }

      // DynamoDB: each action on exactly the tables the definition names for it (their names from the function's
      // environment, which infra derives separately from the grants).
      const tablesByAction = new Map<string, Set<string>>();
      for (const statement of fn.statements) {
        for (const action of list(statement.Action).filter((each) => each.startsWith("dynamodb:"))) {
          for (const resource of list(statement.Resource)) {
            if (/\/stream\//.test(resource)) continue;
            const set = tablesByAction.get(action) ?? new Set<string>();
            set.add(tableOf(resource)!);
            tablesByAction.set(action, set);
          }
        }
      }
      const expectedTables = new Map<string, Set<string>>();
      for (const [table, actions] of Object.entries(functions[name].tables) as [string, readonly string[]][]) {
        for (const action of actions) {
          const set = expectedTables.get(`dynamodb:${action}`) ?? new Set<string>();
          set.add(environment[`SIMROOT_TABLE_${table.toUpperCase()}`]!);
          expectedTables.set(`dynamodb:${action}`, set);
        }
      }
      const sorted = (map: Map<string, Set<string>>) =>
        Object.fromEntries([...map].sort().map(([action, set]) => [action, [...set].sort()]));
      expect({ function: name, tables: sorted(tablesByAction) }).toEqual({ function: name, tables: sorted(expectedTables) });

      // Beyond the declared grants: an event source mapping's reads of its own source (a queue, a table's stream), and
      // failed events sent to its own dead-letter queue (its rule target's, its asynchronous invocations', its queue's,
      // its stream mapping's on-failure destination).
      const own = mappings.filter((mapping) => lastPart(mapping.functionName) === fn.name);
      const sources = own.map((mapping) => mapping.eventSourceArn);
      const ownDeadLetterQueues = new Set(
        [
          ...targets
            .filter((target) => lastPart(target.arn) === fn.name || sources.includes(target.arn))
            .map((target) => target.deadLetterConfig?.arn),
          ...invokeConfigs
            .filter((config) => lastPart(config.functionName) === fn.name)
            .map((config) => config.destinationConfig?.onFailure?.destination),
          ...sources.map((source) => redrives.get(lastPart(source))),
          ...own.map((mapping) => mapping.destinationConfig?.onFailure?.destinationArn),
        ].filter((arn): arn is string => arn !== undefined),
      );
      for (const statement of fn.statements) {
        const extra = list(statement.Action).filter((action) => !declared.includes(action));
        if (extra.length === 0) continue;
        const resources = list(statement.Resource);
        const readsItsSource = extra.every((action) =>
          /^(sqs:(ReceiveMessage|DeleteMessage|ChangeMessageVisibility|GetQueueAttributes|GetQueueUrl)|dynamodb:(DescribeStream|GetRecords|GetShardIterator|ListStreams))$/.test(
            action,
          ),
        );
        const sendsDeadLetters = extra.every((action) => action === "sqs:SendMessage");
        const onOwnSources = resources.every((resource) =>
          sources.some((source) => resource === source || source.startsWith(resource.replace(/\/stream\/\*$/, "/stream"))),
        );
        const onOwnDeadLetterQueues = resources.every((resource) => ownDeadLetterQueues.has(resource));
        expect({
          function: name,
          extra,
          resources,
          allowed: resources.length > 0 && ((readsItsSource && onOwnSources) || (sendsDeadLetters && onOwnDeadLetterQueues)),
        }).toEqual({
          function: name,
          extra,
          resources,
          allowed: true,
        });
      }
    }
  });

  it("lets an AWS service invoke a function only from a resource of the app (no confused deputy)", () => {
    const sources: Record<string, string> = {
      "events.amazonaws.com": "aws:cloudwatch/eventRule:EventRule",
      "apigateway.amazonaws.com": "aws:apigatewayv2/api:Api",
      "iot.amazonaws.com": "aws:iot/authorizer:Authorizer",
    };
    const functionsOfApp = of(app(), "aws:lambda/function:Function");
    const permissions = of(app(), "aws:lambda/permission:Permission");
    expect(permissions.length).toBeGreaterThan(10);
    for (const permission of permissions) {
      const { principal, sourceArn, function: target } = inputs<{ principal: string; sourceArn?: string; function: string }>(permission);
      // The whole ARN of one of the app's resources of the principal's kind (an API's, followed by its stage and route).
      const resources = of(app(), sources[principal] ?? "none");
      const source = resources.find(
        (resource) =>
          sourceArn === resource.outputs.arn || (principal === "apigateway.amazonaws.com" && sourceArn === `${resource.outputs.arn}/*`),
      );
      const invoked = functionsOfApp.find((fn) => target === fn.outputs.arn || target === fn.outputs.name);
      expect({
        permission: permission.name,
        principal,
        sourceArn,
        fromTheApp: source !== undefined,
        toTheApp: invoked !== undefined,
      }).toEqual({
        permission: permission.name,
        principal,
        sourceArn,
        fromTheApp: true,
        toTheApp: true,
      });
    }
  });

  it("lets each rule alone send to its dead-letter queue", () => {
    const targets = of(app(), "aws:cloudwatch/eventTarget:EventTarget")
      .map((target) => inputs<{ rule: string; deadLetterConfig?: { arn: string } }>(target))
      .filter((target) => target.deadLetterConfig);
    expect(targets.length).toBeGreaterThan(5);
    for (const target of targets) {
      const rule = byOutput(app(), "aws:cloudwatch/eventRule:EventRule", "name", target.rule);
      const queue = byOutput(app(), "aws:sqs/queue:Queue", "arn", target.deadLetterConfig!.arn);
      expect({ target: target.rule, rule: rule !== undefined, queue: queue !== undefined }).toEqual({
        target: target.rule,
        rule: true,
        queue: true,
      });
      expectOnlyRuleSends(app(), queue!, rule!);
    }
  });

  it("routes reported facts through the applier's queue, which only their rule may send to", () => {
    const queue = applierQueueOf(app());
    const queueInputs = inputs<{ visibilityTimeoutSeconds: number }>(queue);
    const applier = deployedFunctions(app()).find((fn) => fn.platformName === "operatorEvents")!;
    const timeout = inputs<{ timeout: number }>(applier.resource).timeout;
    expect(queueInputs.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(6 * timeout);
    const redrive = redriveTarget(queue)!;
    expect(redrive.maxReceiveCount).toBe(applierQueue.maxReceiveCount);
    expect(byOutput(app(), "aws:sqs/queue:Queue", "arn", redrive.deadLetterTargetArn)?.name).toMatch(/^OperatorEventsDeadLetterQueue/);

    const mapping = of(app(), "aws:lambda/eventSourceMapping:EventSourceMapping")
      .map((resource) => inputs<Record<string, unknown> & { eventSourceArn: string; functionName: string }>(resource))
      .find((each) => each.eventSourceArn === queue.outputs.arn)!;
    expect(mapping.functionName).toBe(applier.resource.outputs.arn);
    expect(mapping).toMatchObject({
      batchSize: applierQueue.batchSize,
      functionResponseTypes: ["ReportBatchItemFailures"],
      scalingConfig: { maximumConcurrency: applierQueue.maximumConcurrency },
    });

    const targets = of(app(), "aws:cloudwatch/eventTarget:EventTarget")
      .map((resource) => inputs<{ rule: string; arn: string }>(resource))
      .filter((each) => each.arn === queue.outputs.arn);
    expect(targets).toHaveLength(1);
    expectOnlyRuleSends(app(), queue, byOutput(app(), "aws:cloudwatch/eventRule:EventRule", "name", targets[0]!.rule)!);
  });

  it("subscribes each of core's rules on the bus, with its pattern, to its own consumer", () => {
    const [bus] = of(app(), "aws:cloudwatch/eventBus:EventBus");
    const deployed = deployedFunctions(app());
    const applierQueueArn = applierQueueOf(app()).outputs.arn;
    const mappings = of(app(), "aws:lambda/eventSourceMapping:EventSourceMapping").map((mapping) =>
      inputs<{ eventSourceArn: string; functionName: string }>(mapping),
    );
    // Each integration's rule matches only its tenant's events, or none when it is not configured.
    const tenants = integrated
      ? {
          iotSync: integrationSettings.iot.SIMROOT_IOT_TENANT_ID,
          postureSync: integrationSettings.tailscale.SIMROOT_TAILSCALE_TENANT_ID,
          siemExport: integrationSettings.siem.SIMROOT_SIEM_TENANT_ID,
        }
      : {};
    const subscribed = of(app(), "aws:cloudwatch/eventTarget:EventTarget").flatMap((target) => {
      const { rule, arn } = inputs<{ rule: string; arn: string }>(target);
      const ruleResource = byOutput(app(), "aws:cloudwatch/eventRule:EventRule", "name", rule)!;
      const { eventBusName, eventPattern } = inputs<{ eventBusName?: string; eventPattern?: string }>(ruleResource);
      if (!eventPattern) return []; // a schedule (the archiver, the webhook worker)
      // The consumer: the function the target invokes, or the one reading the queue it puts events in.
      const fnArn = arn === applierQueueArn ? mappings.find((mapping) => mapping.eventSourceArn === arn)?.functionName : arn;
      const consumer = deployed.find((fn) => fn.resource.outputs.arn === fnArn)?.platformName;
      return [[consumer, { bus: eventBusName, pattern: JSON.parse(eventPattern) as unknown }] as const];
    });
    expect(Object.fromEntries(subscribed)).toEqual(
      Object.fromEntries(
        (Object.keys(rules) as RuleName[]).map((rule) => [rule, { bus: bus!.outputs.name, pattern: deployedPattern(rule, tenants) }]),
      ),
    );
    expect(subscribed).toHaveLength(Object.keys(rules).length);
  });

  it("reads the audit table's stream by two mappings, the outbox's and the history's, that never drop a record", () => {
    const audit = of(app(), "aws:dynamodb/table:Table").find((table) => table.name.startsWith("Audit"))!;
    expect(inputs(audit)).toMatchObject({ streamEnabled: true, streamViewType: "NEW_IMAGE" });
    const deployed = deployedFunctions(app());
    const discardQueue = of(app(), "aws:sqs/queue:Queue").find((queue) => queue.name.startsWith("StreamDiscardsQueue"))!;
    const readers = of(app(), "aws:lambda/eventSourceMapping:EventSourceMapping")
      .map((mapping) =>
        inputs<{
          eventSourceArn: string;
          functionName: string;
          batchSize: number;
          maximumBatchingWindowInSeconds: number;
          maximumRetryAttempts: number;
          startingPosition: string;
          functionResponseTypes: string[];
          filterCriteria: { filters: { pattern: string }[] };
          destinationConfig?: { onFailure?: { destinationArn?: string } };
        }>(mapping),
      )
      .filter((mapping) => mapping.eventSourceArn.startsWith(`${audit.outputs.arn}/stream/`))
      .map((mapping) => {
        const reader = deployed.find((fn) => fn.resource.outputs.arn === mapping.functionName);
        const discards = mapping.destinationConfig?.onFailure?.destinationArn;
        return {
          reader: reader?.platformName,
          batch: [mapping.batchSize, mapping.maximumBatchingWindowInSeconds],
          // Until a record is handled (or leaves the stream after 24 hours), from the oldest, answering failed records alone.
          never: [mapping.maximumRetryAttempts, mapping.startingPosition, mapping.functionResponseTypes],
          // New audit records only (they carry an action), not the feed versions or listing items of the same table.
          filters: mapping.filterCriteria.filters.map((filter) => JSON.parse(filter.pattern) as unknown),
          // What it drops when records leave the stream is said in the discard queue, which its role may send to (Lambda
          // sends the on-failure record with it).
          discards:
            discards === discardQueue.outputs.arn &&
            reader?.statements.some(
              (statement) =>
                statement.Effect === "Allow" &&
                list(statement.Action).includes("sqs:SendMessage") &&
                list(statement.Resource).includes(discards),
            ),
        };
      });
    const never = [-1, "TRIM_HORIZON", ["ReportBatchItemFailures"]];
    const filters = [{ eventName: ["INSERT"], dynamodb: { NewImage: { action: { S: [{ exists: true }] } } } }];
    expect(readers.sort((a, b) => String(a.reader).localeCompare(String(b.reader)))).toEqual([
      { reader: "history", batch: [streamReaders.historyBatchSize, streamReaders.historyWindowSeconds], never, filters, discards: true },
      { reader: "outbox", batch: [streamReaders.outboxBatchSize, streamReaders.outboxWindowSeconds], never, filters, discards: true },
    ]);
    // Any message there alarms.
    const alarm = of(app(), "aws:cloudwatch/metricAlarm:MetricAlarm").find((resource) => resource.name === "StreamDiscards");
    expect(inputs(alarm!)).toMatchObject({
      namespace: "AWS/SQS",
      metricName: "ApproximateNumberOfMessagesVisible",
      dimensions: { QueueName: discardQueue.outputs.name },
      comparisonOperator: "GreaterThanThreshold",
      threshold: 0,
    });
  });

  it("gives every rule's target its retry policy and a dead-letter queue", () => {
    const targets = of(app(), "aws:cloudwatch/eventTarget:EventTarget").filter(
      (resource) => !/^(AuditArchiver|WebhookWorker)/.test(resource.name),
    );
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) {
      expect({ target: target.name, ...inputs(target) }).toMatchObject({
        target: target.name,
        retryPolicy: {
          maximumRetryAttempts: retryPolicy.deliveryRetryAttempts,
          maximumEventAgeInSeconds: retryPolicy.maximumEventAgeSeconds,
        },
        deadLetterConfig: { arn: expect.stringMatching(/DeadLetterQueue/) },
      });
    }
  });

  it("alarms only on what it deploys, and tells the alarm topic", () => {
    const names = namesByDimension(app());
    const topics = of(app(), "aws:sns/topic:Topic").map((resource) => resource.outputs.arn);
    const alarms = of(app(), "aws:cloudwatch/metricAlarm:MetricAlarm");
    expect(alarms.length).toBeGreaterThan(20);
    for (const alarm of alarms) {
      const {
        dimensions = {},
        metricQueries = [],
        alarmActions = [],
      } = inputs<{
        dimensions?: Record<string, string>;
        metricQueries?: { metric?: { dimensions?: Record<string, string> } }[];
        alarmActions?: string[];
      }>(alarm);
      const all = [dimensions, ...metricQueries.map((query) => query.metric?.dimensions ?? {})].flatMap((each) => Object.entries(each));
      for (const [dimension, value] of all) {
        expect({ alarm: alarm.name, dimension, value, known: names[dimension]?.has(value) ?? false }).toEqual({
          alarm: alarm.name,
          dimension,
          value,
          known: true,
        });
      }
      expect({ alarm: alarm.name, actions: alarmActions }).toEqual({ alarm: alarm.name, actions: topics });
    }
  });

  it("watches every function it deploys but the API's: its errors, or for a stream's reader its iterator age (review 71: the IoT authorizer had none)", () => {
    // The API's functions answer through the gateway, whose 5xx and latency alarms watch them.
    const alarmed = new Map<string, Set<string>>();
    for (const alarm of of(app(), "aws:cloudwatch/metricAlarm:MetricAlarm")) {
      const {
        namespace,
        metricName,
        dimensions = {},
      } = inputs<{
        namespace?: string;
        metricName?: string;
        dimensions?: Record<string, string>;
      }>(alarm);
      if (namespace !== "AWS/Lambda" || !metricName || dimensions.FunctionName === undefined) continue;
      alarmed.set(dimensions.FunctionName, (alarmed.get(dimensions.FunctionName) ?? new Set()).add(metricName));
    }
    const watched = deployedFunctions(app())
      .filter((fn) => fn.platformName && !(functions[fn.platformName] as FunctionDefinition).routes)
      .map((fn) => ({
        function: fn.platformName,
        watched: ["Errors", "IteratorAge"].some((metric) => alarmed.get(fn.name)?.has(metric)),
      }));
    if (integrated) expect(watched.map((fn) => fn.function)).toContain("iotAuthorizer");
    expect(watched.filter((fn) => !fn.watched)).toEqual([]);
  });

  it("fires an age alarm at the age it states, and the archive's margin alarm when the archiver prints none (review 101)", () => {
    const alarms = of(app(), "aws:cloudwatch/metricAlarm:MetricAlarm").map((alarm) => ({
      name: alarm.name,
      ...inputs<{
        alarmDescription: string;
        metricName?: string;
        threshold: number;
        period: number;
        evaluationPeriods: number;
        datapointsToAlarm?: number;
        treatMissingData?: string;
      }>(alarm),
    }));
    // Lambda reports its ages in milliseconds, SQS in seconds. An alarm fires once its last `datapointsToAlarm` periods
    // were each above the threshold: an age above it in the first of them, and as many periods more.
    const ages: Record<string, number> = { IteratorAge: 1_000, AsyncEventAge: 1_000, ApproximateAgeOfOldestMessage: 1 };
    const aged = alarms.filter((alarm) => alarm.metricName !== undefined && alarm.metricName in ages);
    expect(aged.map((alarm) => alarm.name)).toEqual(expect.arrayContaining(["OutboxIteratorAge", "HistoryIteratorAge", "ApplierQueueAge"]));
    for (const alarm of aged) {
      const stated = Number(/more than (\d+) minutes/.exec(alarm.alarmDescription)?.[1]) * 60;
      const firesAfter =
        alarm.threshold / ages[alarm.metricName!]! + ((alarm.datapointsToAlarm ?? alarm.evaluationPeriods) - 1) * alarm.period;
      expect({ alarm: alarm.name, firesAfter }).toEqual({ alarm: alarm.name, firesAfter: stated });
    }
    // Printed by every archiver run: an hour with none is the archiver not running or failing before it reads.
    expect(alarms.find((alarm) => alarm.name === "AuditArchiveMargin")).toMatchObject({ treatMissingData: "breaching" });
  });

  it("alarms on each metric with a set of dimensions AWS publishes it with (review 62: ThrottledRequests by table alone has no data)", () => {
    // From the services' CloudWatch metric references: an alarm on any other set watches a metric that never has data.
    const published: Record<string, readonly (readonly string[])[]> = {
      "AWS/DynamoDB/ReadThrottleEvents": [["TableName"], ["GlobalSecondaryIndexName", "TableName"]],
      "AWS/DynamoDB/WriteThrottleEvents": [["TableName"], ["GlobalSecondaryIndexName", "TableName"]],
      "AWS/DynamoDB/ThrottledRequests": [["Operation", "TableName"]],
      "AWS/DynamoDB/SystemErrors": [["Operation", "TableName"]],
      "AWS/Lambda/Errors": [[], ["FunctionName"]],
      "AWS/Lambda/Throttles": [[], ["FunctionName"]],
      "AWS/Lambda/IteratorAge": [["FunctionName"]],
      "AWS/Lambda/AsyncEventAge": [["FunctionName"]],
      "AWS/SQS/NumberOfMessagesReceived": [["QueueName"]],
      "AWS/SQS/ApproximateAgeOfOldestMessage": [["QueueName"]],
      "AWS/SQS/ApproximateNumberOfMessagesVisible": [["QueueName"]],
      "AWS/ApiGateway/5xx": [["ApiId"]],
      "AWS/ApiGateway/IntegrationLatency": [["ApiId"]],
    };
    const wrong: string[] = [];
    for (const alarm of of(app(), "aws:cloudwatch/metricAlarm:MetricAlarm")) {
      const {
        namespace,
        metricName,
        dimensions = {},
        metricQueries = [],
      } = inputs<{
        namespace?: string;
        metricName?: string;
        dimensions?: Record<string, string>;
        metricQueries?: { metric?: { namespace: string; metricName: string; dimensions?: Record<string, string> } }[];
      }>(alarm);
      const metrics = metricName
        ? [{ namespace: namespace!, metricName, dimensions }]
        : metricQueries.flatMap((query) => query.metric ?? []);
      for (const metric of metrics) {
        if (metric.namespace === metricNamespace) continue;
        const names = Object.keys(metric.dimensions ?? {}).sort();
        const sets = published[`${metric.namespace}/${metric.metricName}`];
        if (!sets?.some((set) => set.join() === names.join())) wrong.push(`${alarm.name}: ${metric.metricName} by [${names.join(", ")}]`);
      }
    }
    expect(wrong).toEqual([]);
    // Each table's throttle alarm counts its indexes' throttle events too.
    const throttles = of(app(), "aws:cloudwatch/metricAlarm:MetricAlarm").filter((alarm) => /TableThrottles/.test(alarm.name));
    expect(throttles.length).toBe(Object.keys(tableDefinitions).length);
    const indexed = throttles.flatMap((alarm) =>
      inputs<{ metricQueries: { metric?: { dimensions?: Record<string, string> } }[] }>(alarm).metricQueries.flatMap(
        (query) => query.metric?.dimensions?.GlobalSecondaryIndexName ?? [],
      ),
    );
    expect(new Set(indexed)).toEqual(new Set(Object.values(tableDefinitions).flatMap((table) => Object.keys(table.indexes))));
  });

  it("draws its dashboard from metrics core records and from resources it deploys", () => {
    const [dashboard] = of(app(), "aws:cloudwatch/dashboard:Dashboard");
    const body = JSON.parse(inputs<{ dashboardBody: string }>(dashboard!).dashboardBody) as {
      widgets: { properties: { title: string; metrics?: unknown[][] } }[];
    };
    const names = namesByDimension(app());
    /** Each widget's series: a SEARCH over core's metrics (its dimensions and metric name), or a metric and its dimensions. */
    const series = (widget: (typeof body.widgets)[number]) =>
      (widget.properties.metrics ?? []).map((metric) => {
        const [first] = metric;
        if (typeof first === "object" && first !== null && "expression" in first) {
          const expression = String((first as { expression: string }).expression);
          return { search: /\{([^}]*)\}/.exec(expression)?.[1], metric: /MetricName="(\w+)"/.exec(expression)?.[1] };
        }
        const parts = metric.filter((part) => typeof part === "string") as string[];
        const dimensions: [string, string][] = [];
        for (let at = 2; at + 1 < parts.length; at += 2) dimensions.push([parts[at]!, parts[at + 1]!]);
        return { namespace: parts[0], metric: parts[1], dimensions };
      });
    for (const widget of body.widgets) {
      for (const each of series(widget)) {
        if ("search" in each) {
          expect({
            widget: widget.properties.title,
            ...each,
            recorded: each.metric !== undefined && each.metric in metricDefinitions,
          }).toEqual({
            widget: widget.properties.title,
            ...each,
            search: `${metricNamespace},service`,
            recorded: true,
          });
          continue;
        }
        for (const [dimension, value] of each.dimensions) {
          expect({ widget: widget.properties.title, dimension, value, deployed: names[dimension]?.has(value) ?? false }).toEqual({
            widget: widget.properties.title,
            dimension,
            value,
            deployed: true,
          });
        }
      }
    }
    // What issue 12 asks it to show: ingest accepted against applied, every dead-letter queue, revocations' latency.
    const widget = (title: RegExp) => body.widgets.find((each) => title.test(each.properties.title))!;
    expect(series(widget(/accepted vs applied/i)).map((each) => each.metric)).toEqual(
      expect.arrayContaining(["IngestAccepted", "FactsSettled"]),
    );
    expect(series(widget(/revocation/i)).map((each) => each.metric)).toContain("RevocationLatencyMs");
    // Dead letters as they arrive (the drain keeps the queues' depth near 0), for every dead-letter queue.
    const deadLetters = series(widget(/^dead letters/i));
    expect(deadLetters.map((each) => each.metric)).toEqual(deadLetters.map(() => "NumberOfMessagesReceived"));
    const plotted = deadLetters.flatMap((each) =>
      (each.dimensions ?? []).filter(([dimension]) => dimension === "QueueName").map(([, value]) => value),
    );
    expect(plotted.sort()).toEqual(deadLetterQueues(app()).sort());
  });

  it("keeps its data in production and lets a disposable stage go", () => {
    const tables = of(app(), "aws:dynamodb/table:Table");
    expect(tables).toHaveLength(5);
    for (const table of tables) {
      const { deletionProtectionEnabled, pointInTimeRecovery } = inputs<{
        deletionProtectionEnabled?: boolean;
        pointInTimeRecovery?: { enabled: boolean };
      }>(table);
      expect({
        table: table.name,
        deletionProtectionEnabled: deletionProtectionEnabled ?? false,
        pitr: pointInTimeRecovery?.enabled ?? false,
      }).toEqual({
        table: table.name,
        deletionProtectionEnabled: stage === "production",
        pitr: stage === "production",
      });
    }
  });

  it("archives the audit trail to a private, TLS-only, versioned bucket that only the archiver writes, locked for 7 years in production", () => {
    const [bucket] = of(app(), "aws:s3/bucket:Bucket").map((resource) => inputs<{ bucket: string; objectLockEnabled?: boolean }>(resource));
    const arn = `arn:aws:s3:::${bucket!.bucket}`;
    const onBucket = <T>(type: string) =>
      of(app(), type)
        .map((resource) => inputs<T & { bucket: string }>(resource))
        .filter((each) => each.bucket === bucket!.bucket);
    expect(onBucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")).toEqual([
      expect.objectContaining({ blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true }),
    ]);
    expect(onBucket<{ versioningConfiguration: { status: string } }>("aws:s3/bucketVersioning:BucketVersioning")).toEqual([
      expect.objectContaining({ versioningConfiguration: { status: "Enabled" } }),
    ]);
    const policies = onBucket<{ policy: string }>("aws:s3/bucketPolicy:BucketPolicy");
    expect(policies).toHaveLength(1);
    const [policy] = policies;
    // The bucket's policy only denies: who may write is each role's business (the archiver's alone, below).
    expect(statementsOf(policy!.policy).map((statement) => statement.Effect)).toEqual(statementsOf(policy!.policy).map(() => "Deny"));
    expect(statementsOf(policy!.policy)).toContainEqual(
      expect.objectContaining({
        Effect: "Deny",
        Resource: [arn, `${arn}/*`],
        Condition: { Bool: { "aws:SecureTransport": ["false"] } },
      }),
    );
    const locks = onBucket<{ rule: unknown }>("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration");
    expect(locks.map((lock) => lock.rule)).toEqual(stage === "production" ? [{ defaultRetention: { mode: "COMPLIANCE", years: 7 } }] : []);
    expect(bucket!.objectLockEnabled ?? false).toBe(stage === "production");
    const writers = deployedFunctions(app()).filter((fn) =>
      fn.statements.some((statement) => list(statement.Action).includes("s3:PutObject")),
    );
    expect(writers.map((fn) => fn.platformName)).toEqual(["auditArchiver"]);
    expect(
      writers[0]!.statements
        .filter((statement) => list(statement.Action).includes("s3:PutObject"))
        .flatMap((statement) => list(statement.Resource)),
    ).toEqual([`${arn}/*`]);
  });

  it("signs the feed with an Ed25519 KMS key that its signing functions, and only they, may use", () => {
    const key = of(app(), "aws:kms/key:Key").find((resource) => resource.name.startsWith("FeedSigningKey"))!;
    expect(inputs(key)).toMatchObject({ customerMasterKeySpec: "ECC_NIST_EDWARDS25519", keyUsage: "SIGN_VERIFY" });
    const signers = deployedFunctions(app())
      .filter((fn) => fn.statements.some((statement) => list(statement.Action).includes("kms:Sign")))
      .map((fn) => fn.platformName)
      .sort();
    expect(signers).toEqual(functionNames.filter((name) => (functions[name].feedKey as readonly string[]).includes("Sign")).sort());
    for (const fn of deployedFunctions(app())) {
      if (signers.includes(fn.platformName)) expect(fn.environment.SIMROOT_FEED_KMS_KEY_ID).toBeTruthy();
    }
  });

  it("routes each route key of the HTTP API to the function the platform definition gives it, and no other key", () => {
    const deployed = deployedFunctions(app());
    const integrations = of(app(), "aws:apigatewayv2/integration:Integration");
    const routed = of(app(), "aws:apigatewayv2/route:Route").map((route) => {
      const { routeKey, target } = inputs<{ routeKey: string; target: string }>(route);
      const integration = integrations.find((each) => target === `integrations/${each.outputs.id}`);
      const uri = integration && inputs<{ integrationUri: string }>(integration).integrationUri;
      const fn = deployed.find(
        (each) => uri === each.resource.outputs.arn || uri === inputs<{ invokeArn?: string }>(each.resource).invokeArn,
      );
      return [routeKey, fn?.platformName] as const;
    });
    const declared = deployed.flatMap((fn) =>
      ((functions[fn.platformName!] as FunctionDefinition).routes ?? []).map((routeKey) => [routeKey, fn.platformName] as const),
    );
    expect(routed.length).toBeGreaterThan(5);
    expect(Object.fromEntries(routed)).toEqual(Object.fromEntries(declared));
    expect(routed).toHaveLength(declared.length);
  });

  it("approves no cross-origin request: the gateway answers no CORS preflight the app does not (review 118)", () => {
    // The API's keys are bearer tokens, and the console is served from the same origin. SST's default CORS (any origin,
    // any header) had the gateway approve every preflight: any site's script could send a key or a guess at one.
    const [gateway] = of(app(), "aws:apigatewayv2/api:Api");
    const cors = inputs<{ corsConfiguration?: { allowOrigins?: string[]; allowHeaders?: string[] } }>(gateway!).corsConfiguration;
    expect({ origins: cors?.allowOrigins ?? [], headers: cors?.allowHeaders ?? [] }).toEqual({ origins: [], headers: [] });
  });

  it("answers the HTTP API from functions that stop before the gateway does", () => {
    const integrations = of(app(), "aws:apigatewayv2/integration:Integration");
    expect(integrations.length).toBeGreaterThan(0);
    const apiFunctions = deployedFunctions(app()).filter((fn) => (functions[fn.platformName!] as FunctionDefinition).routes);
    for (const fn of apiFunctions) {
      expect(inputs<{ timeout: number }>(fn.resource).timeout).toBeLessThan(timeouts.gatewaySeconds);
    }
    for (const integration of integrations) {
      const { timeoutMilliseconds } = inputs<{ timeoutMilliseconds?: number }>(integration);
      expect(timeoutMilliseconds ?? 30_000).toBeLessThanOrEqual(timeouts.gatewaySeconds * 1000);
    }
  });
  it("asks of AWS nothing its APIs refuse: the limits and ranges each service checks when a resource is created", () => {
    // Each entry names a resource and what AWS would answer; the list must stay empty. Sources: Lambda's
    // CreateEventSourceMapping and "Lambda parameters for Amazon SQS event source mappings", Lambda quotas (timeout,
    // memory, 4 KB of environment variables), IAM quotas (names of 64 characters, 10,240 non-whitespace characters of
    // inline policy per role), KMS's key rotation and deletion window, PutFunctionEventInvokeConfig, EventBridge's
    // RetryPolicy and targets per rule, SQS's queue attributes and policy quotas, CloudWatch Logs' PutRetentionPolicy,
    // CloudWatch's PutMetricAlarm, DynamoDB's table names and indexes per table, and S3's bucket naming rules.
    const refused: string[] = [];
    const refuse = (resource: string, why: string) => refused.push(`${resource}: ${why}`);
    const within = (value: number | undefined, low: number, high: number) => value === undefined || (value >= low && value <= high);
    const deployed = deployedFunctions(app());

    for (const fn of deployed) {
      const { timeout, memorySize } = inputs<{ timeout: number; memorySize: number }>(fn.resource);
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(fn.name)) refuse(fn.name, "a function name is 1 to 64 letters, digits, - or _");
      if (!within(timeout, 1, 900)) refuse(fn.name, `timeout ${timeout} s is outside 1 to 900`);
      if (!within(memorySize, 128, 10_240)) refuse(fn.name, `memory ${memorySize} MB is outside 128 to 10,240`);
      const environmentBytes = Object.entries(fn.environment).reduce((sum, [key, value]) => sum + key.length + String(value).length, 0);
      if (environmentBytes > 4096) refuse(fn.name, `${environmentBytes} bytes of environment variables, past 4 KB`);
    }
    for (const role of of(app(), "aws:iam/role:Role")) {
      const { name, managedPolicyArns = [] } = inputs<{ name: string; managedPolicyArns?: string[] }>(role);
      const size = rolePolicies(app(), name).reduce((sum, policy) => sum + policy.replace(/\s/g, "").length, 0);
      if (!/^[\w+=,.@-]{1,64}$/.test(name)) refuse(name, "a role name is 1 to 64 characters of [\\w+=,.@-]");
      if (size > 10_240) refuse(name, `${size} characters of inline policy, past 10,240`);
      if (managedPolicyArns.length > 10) refuse(name, `${managedPolicyArns.length} managed policies, past 10`);
    }

    for (const mapping of of(app(), "aws:lambda/eventSourceMapping:EventSourceMapping")) {
      const { eventSourceArn, functionName, batchSize, maximumBatchingWindowInSeconds, scalingConfig } = inputs<{
        eventSourceArn: string;
        functionName: string;
        batchSize?: number;
        maximumBatchingWindowInSeconds?: number;
        scalingConfig?: { maximumConcurrency?: number };
      }>(mapping);
      const fn = deployed.find((each) => each.resource.outputs.arn === functionName || each.name === functionName);
      const timeout = fn ? inputs<{ timeout: number }>(fn.resource).timeout : undefined;
      if (!within(batchSize, 1, 10_000)) refuse(mapping.name, `batch size ${batchSize} is outside 1 to 10,000`);
      if (!within(maximumBatchingWindowInSeconds, 0, 300)) refuse(mapping.name, "a batching window is at most 300 s");
      const queue = byOutput(app(), "aws:sqs/queue:Queue", "arn", eventSourceArn);
      if (!queue) {
        // A stream's mapping must say where to start reading.
        const { startingPosition } = inputs<{ startingPosition?: string }>(mapping);
        if (!["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"].includes(startingPosition ?? ""))
          refuse(mapping.name, "a stream needs a starting position");
        continue;
      }
      const visibility = inputs<{ visibilityTimeoutSeconds?: number }>(queue).visibilityTimeoutSeconds ?? 30;
      // Lambda refuses the mapping when the function may run longer than a message stays hidden (it would be handed
      // out twice); six times the timeout is what Lambda asks for, so a throttled batch is retried before it shows again.
      if (timeout === undefined || visibility < 6 * timeout) {
        refuse(mapping.name, `${queue.name}'s visibility timeout ${visibility} s is under 6 x the function's ${timeout} s`);
      }
      if ((batchSize ?? 10) > 10 && !maximumBatchingWindowInSeconds)
        refuse(mapping.name, "a batch of more than 10 messages needs a batching window");
      if (!within(scalingConfig?.maximumConcurrency, 2, 1000)) refuse(mapping.name, "maximum concurrency is 2 to 1,000");
    }
    for (const config of of(app(), "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")) {
      const { maximumRetryAttempts, maximumEventAgeInSeconds } = inputs<{
        maximumRetryAttempts?: number;
        maximumEventAgeInSeconds?: number;
      }>(config);
      if (!within(maximumRetryAttempts, 0, 2))
        refuse(config.name, `${maximumRetryAttempts} retries of an asynchronous invocation, outside 0 to 2`);
      if (!within(maximumEventAgeInSeconds, 60, 21_600)) refuse(config.name, "an asynchronous event's age is 60 s to 6 h");
    }

    const targetsByRule = new Map<string, number>();
    for (const target of of(app(), "aws:cloudwatch/eventTarget:EventTarget")) {
      const { rule, retryPolicy } = inputs<{
        rule: string;
        retryPolicy?: { maximumRetryAttempts?: number; maximumEventAgeInSeconds?: number };
      }>(target);
      targetsByRule.set(rule, (targetsByRule.get(rule) ?? 0) + 1);
      if (!within(retryPolicy?.maximumRetryAttempts, 0, 185)) refuse(target.name, "EventBridge retries 0 to 185 times");
      if (!within(retryPolicy?.maximumEventAgeInSeconds, 60, 86_400)) refuse(target.name, "EventBridge keeps an event 60 s to 24 h");
    }
    for (const [rule, count] of targetsByRule) if (count > 5) refuse(rule, `${count} targets, past 5 a rule`);

    for (const queue of of(app(), "aws:sqs/queue:Queue")) {
      const { name, visibilityTimeoutSeconds, messageRetentionSeconds } = inputs<{
        name: string;
        visibilityTimeoutSeconds?: number;
        messageRetentionSeconds?: number;
      }>(queue);
      if (!/^[A-Za-z0-9_-]{1,80}$/.test(name)) refuse(name, "a queue name is 1 to 80 letters, digits, - or _");
      if (!within(visibilityTimeoutSeconds, 0, 43_200)) refuse(name, "a visibility timeout is at most 12 h");
      if (!within(messageRetentionSeconds, 60, 1_209_600)) refuse(name, "messages are kept 60 s to 14 days");
      const redrive = redriveTarget(queue);
      if (redrive && !within(redrive.maxReceiveCount, 1, 1000)) refuse(name, "maxReceiveCount is 1 to 1,000");
    }
    for (const policy of of(app(), "aws:sqs/queuePolicy:QueuePolicy")) {
      const document = inputs<{ policy: string }>(policy).policy;
      const statements = statementsOf(document);
      if (Buffer.byteLength(document) > 8192) refuse(policy.name, "a queue policy is at most 8,192 bytes");
      if (statements.length > 20) refuse(policy.name, "a queue policy holds at most 20 statements");
      if (statements.some((statement) => list(statement.Action).length > 7)) refuse(policy.name, "at most 7 actions a statement");
    }

    const retentions = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];
    for (const group of of(app(), "aws:cloudwatch/logGroup:LogGroup")) {
      const { retentionInDays } = inputs<{ retentionInDays?: number }>(group);
      if (retentionInDays !== undefined && !retentions.includes(retentionInDays))
        refuse(group.name, `no retention of ${retentionInDays} days`);
    }
    for (const alarm of of(app(), "aws:cloudwatch/metricAlarm:MetricAlarm")) {
      const { period, evaluationPeriods, datapointsToAlarm } = inputs<{
        period?: number;
        evaluationPeriods: number;
        datapointsToAlarm?: number;
      }>(alarm);
      if (period !== undefined && ![10, 30].includes(period) && period % 60 !== 0)
        refuse(alarm.name, `period ${period} s: 10, 30 or a multiple of 60`);
      if (datapointsToAlarm !== undefined && datapointsToAlarm > evaluationPeriods)
        refuse(alarm.name, "more datapoints to alarm than periods");
      const { statistic, extendedStatistic, metricQueries, treatMissingData } = inputs<{
        statistic?: string;
        extendedStatistic?: string;
        metricQueries?: unknown[];
        treatMissingData?: string;
      }>(alarm);
      if (!metricQueries && [statistic, extendedStatistic].filter(Boolean).length !== 1)
        refuse(alarm.name, "one statistic or one percentile");
      if (!["breaching", "notBreaching", "ignore", "missing", undefined].includes(treatMissingData))
        refuse(alarm.name, "no such missing data");
    }
    for (const key of of(app(), "aws:kms/key:Key")) {
      const {
        customerMasterKeySpec = "SYMMETRIC_DEFAULT",
        enableKeyRotation,
        deletionWindowInDays,
      } = inputs<{
        customerMasterKeySpec?: string;
        enableKeyRotation?: boolean;
        deletionWindowInDays?: number;
      }>(key);
      // KMS rotates symmetric encryption keys only.
      if (enableKeyRotation && customerMasterKeySpec !== "SYMMETRIC_DEFAULT")
        refuse(key.name, `no automatic rotation of an asymmetric key (${customerMasterKeySpec})`);
      if (!within(deletionWindowInDays, 7, 30)) refuse(key.name, "a deletion window is 7 to 30 days");
    }
    for (const authorizer of of(app(), "aws:iot/authorizer:Authorizer")) {
      const { name } = inputs<{ name: string }>(authorizer);
      if (!/^[\w=,@-]{1,128}$/.test(name)) refuse(name, "an IoT authorizer name is 1 to 128 characters of [\\w=,@-]");
    }
    for (const table of of(app(), "aws:dynamodb/table:Table")) {
      const { name, globalSecondaryIndexes = [] } = inputs<{ name: string; globalSecondaryIndexes?: unknown[] }>(table);
      if (!/^[A-Za-z0-9_.-]{3,255}$/.test(name)) refuse(name, "a table name is 3 to 255 letters, digits, _, . or -");
      if (globalSecondaryIndexes.length > 20) refuse(name, "at most 20 global secondary indexes");
    }
    for (const bucket of of(app(), "aws:s3/bucket:Bucket")) {
      const name = inputs<{ bucket: string }>(bucket).bucket;
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)) refuse(name, "a bucket name is 3 to 63 lowercase letters, digits, . or -");
    }

    expect(refused).toEqual([]);
  });

  it("bills its tables on demand, or provisions every table and index with target-tracking scaling of reads and writes", () => {
    const tables = of(app(), "aws:dynamodb/table:Table").map((resource) =>
      inputs<{
        name: string;
        billingMode: string;
        readCapacity?: number;
        writeCapacity?: number;
        globalSecondaryIndexes?: { name: string; readCapacity?: number; writeCapacity?: number }[];
      }>(resource),
    );
    const targets = of(app(), "aws:appautoscaling/target:Target").map((resource) =>
      inputs<{ resourceId: string; scalableDimension: string; minCapacity: number; maxCapacity: number }>(resource),
    );
    const policies = of(app(), "aws:appautoscaling/policy:Policy").map((resource) =>
      inputs<{
        resourceId: string;
        scalableDimension: string;
        policyType: string;
        targetTrackingScalingPolicyConfiguration: { targetValue: number; predefinedMetricSpecification: { predefinedMetricType: string } };
      }>(resource),
    );
    expect(tables.map((table) => table.billingMode)).toEqual(tables.map(() => (provisioned ? "PROVISIONED" : "PAY_PER_REQUEST")));
    const scaled = tables.flatMap((table) => [
      `table/${table.name}|dynamodb:table`,
      ...(table.globalSecondaryIndexes ?? []).map((index) => `table/${table.name}/index/${index.name}|dynamodb:index`),
    ]);
    const expected = provisioned ? scaled.flatMap((each) => [`${each}:ReadCapacityUnits`, `${each}:WriteCapacityUnits`]).sort() : [];
    expect(targets.map((target) => `${target.resourceId}|${target.scalableDimension}`).sort()).toEqual(expected);
    expect(policies.map((policy) => `${policy.resourceId}|${policy.scalableDimension}`).sort()).toEqual(expected);
    if (!provisioned) return;
    // A provisioned table and each of its indexes start at the floor, and scale between it and the ceiling, each
    // dimension on its own utilisation metric at 70%.
    const floor = Math.min(...targets.map((target) => target.minCapacity));
    for (const table of tables) {
      for (const capacity of [table, ...(table.globalSecondaryIndexes ?? [])]) {
        expect({ table: table.name, read: capacity.readCapacity, write: capacity.writeCapacity }).toEqual({
          table: table.name,
          read: floor,
          write: floor,
        });
      }
    }
    for (const target of targets) expect(target.maxCapacity).toBeGreaterThan(target.minCapacity);
    for (const policy of policies) {
      const dimension = /(Read|Write)CapacityUnits$/.exec(policy.scalableDimension)![1];
      expect(policy).toMatchObject({
        policyType: "TargetTrackingScaling",
        targetTrackingScalingPolicyConfiguration: {
          targetValue: 70,
          predefinedMetricSpecification: { predefinedMetricType: `DynamoDB${dimension}CapacityUtilization` },
        },
      });
    }
  });

  it("watches every dead-letter queue, keeps its logs for the stage's retention, throttles the API and expires what core expires", () => {
    // Every queue that collects failed events has an alarm on the first message it receives.
    const watched = of(app(), "aws:cloudwatch/metricAlarm:MetricAlarm")
      .map((alarm) =>
        inputs<{ metricName?: string; dimensions?: Record<string, string>; threshold?: number; comparisonOperator?: string }>(alarm),
      )
      .filter(
        (alarm) =>
          alarm.metricName === "NumberOfMessagesReceived" && alarm.threshold === 0 && alarm.comparisonOperator === "GreaterThanThreshold",
      )
      .map((alarm) => alarm.dimensions?.QueueName);
    expect(deadLetterQueues(app()).length).toBeGreaterThan(5);
    expect(deadLetterQueues(app()).filter((queue) => !watched.includes(queue))).toEqual([]);
    // The outbox's dead letters (events the bus refused for good) have no queue: the outbox counts them, alarmed on the first.
    const refusals = of(app(), "aws:cloudwatch/metricAlarm:MetricAlarm")
      .map((alarm) => inputs<Record<string, unknown>>(alarm))
      .filter((alarm) => alarm.namespace === metricNamespace && alarm.metricName === "EventsRefused");
    expect(
      refusals.map(({ dimensions, statistic, threshold, comparisonOperator }) => ({
        dimensions,
        statistic,
        threshold,
        comparisonOperator,
      })),
    ).toEqual([{ dimensions: { service: "simroot-outbox" }, statistic: "Sum", threshold: 0, comparisonOperator: "GreaterThanThreshold" }]);

    // Every function logs (JSON) to a log group kept 3 months in production, a week elsewhere.
    const days = stage === "production" ? 90 : 7;
    const logGroups = new Map(
      of(app(), "aws:cloudwatch/logGroup:LogGroup").map((group) => {
        const { name, retentionInDays } = inputs<{ name: string; retentionInDays?: number }>(group);
        return [name, retentionInDays];
      }),
    );
    for (const fn of deployedFunctions(app())) {
      const { loggingConfig } = inputs<{ loggingConfig?: { logFormat: string; logGroup: string } }>(fn.resource);
      expect({
        function: fn.platformName,
        format: loggingConfig?.logFormat,
        retention: logGroups.get(loggingConfig?.logGroup ?? ""),
      }).toEqual({
        function: fn.platformName,
        format: "JSON",
        retention: days,
      });
    }

    // The whole API is throttled, more tightly outside production.
    const [apiStage] = of(app(), "aws:apigatewayv2/stage:Stage").map((each) =>
      inputs<{ defaultRouteSettings?: { throttlingRateLimit: number; throttlingBurstLimit: number } }>(each),
    );
    expect(apiStage!.defaultRouteSettings).toEqual(
      stage === "production"
        ? { throttlingRateLimit: 2_000, throttlingBurstLimit: 1_000 }
        : { throttlingRateLimit: 50, throttlingBurstLimit: 100 },
    );

    // DynamoDB's TTL on the attribute core writes for each table that expires items (audit records, parked facts...).
    const tables = of(app(), "aws:dynamodb/table:Table");
    for (const [key, definition] of Object.entries(tableDefinitions) as [string, { readonly ttl?: string }][]) {
      const table = tables.find((each) => each.name.toLowerCase().startsWith(key.toLowerCase()))!;
      expect({ table: key, ttl: inputs<{ ttl?: unknown }>(table).ttl }).toEqual({
        table: key,
        ttl: definition.ttl ? { attributeName: definition.ttl, enabled: true } : undefined,
      });
    }
  });
});

describe("the bundles SST would build", () => {
  it("are the ones the budgets and permission checks measure: the plugins run through SST's plugin bridge as through esbuild", async () => {
    // SST runs `nodejs.plugins` (infra/functions.ts) in a Node process of its own, through its Go side
    // (test/support/sst-plugin-bridge.ts); scripts/bundle/build.ts runs them in esbuild itself.
    const bridge = sstPluginBridge(root, "infra/esbuild-plugins.mjs");
    try {
      for (const name of functionNames) {
        const [viaSst, measured] = await Promise.all([bundleFunction(name, { plugins: [bridge.plugin] }), bundleFunction(name)]);
        expect({ name, bytes: viaSst.bytes, same: viaSst.code === measured.code }).toEqual({ name, bytes: measured.bytes, same: true });
      }
    } finally {
      await bridge.close();
    }
  }, 120_000);
});

describe("each event consumer's concurrency", () => {
  const reserved = (app: Synthesized) =>
    Object.fromEntries(
      deployedFunctions(app)
        .map(
          (fn) => [fn.platformName, inputs<{ reservedConcurrentExecutions?: number }>(fn.resource).reservedConcurrentExecutions] as const,
        )
        .filter(([, value]) => value !== undefined),
    );

  it("reserves none unless the deploying shell sets SIMROOT_CONSUMER_CONCURRENCY", () => {
    expect(reserved(synthesized.get("production")!)).toEqual({});
    expect(reserved(synthesized.get("dev")!)).toEqual({});
  });

  it("bounds every consumer EventBridge invokes by it, and no other function (the applier's queue mapping bounds the applier)", () => {
    const app = synthesized.get("production with the integrations")!;
    const invoked = (Object.keys(rules) as RuleName[]).filter((name) => name !== "operatorEvents");
    expect(invoked.length).toBeGreaterThan(5);
    expect(reserved(app)).toEqual(Object.fromEntries(invoked.map((name) => [name, 20])));
  });

  it("stops the synthesis on a value that is not a whole number from 1 to 1,000", async () => {
    for (const value of ["lots", "0", "2.5", "5000"]) {
      await expect(synthesize("dev", { SIMROOT_CONSUMER_CONCURRENCY: value })).rejects.toThrow(
        /SIMROOT_CONSUMER_CONCURRENCY must be a whole number/,
      );
    }
  }, 240_000);
});

describe("the IoT sync's permissions", () => {
  it("name simroot's IoT resources by the deployment's prefix, and no other (review 160)", () => {
    // Granted on `simroot-*` whatever SIMROOT_IOT_PREFIX said, the sync could create none of its groups, thing type or
    // policies under another prefix: every event failed, and suspended or revoked devices never entered the deny groups.
    const app = synthesized.get("production with the integrations")!;
    const sync = deployedFunctions(app).find((fn) => fn.platformName === "iotSync")!;
    const named = sync.statements
      .filter((statement) => list(statement.Action).some((action) => action.startsWith("iot:")))
      .flatMap((statement) => list(statement.Resource))
      .filter((resource) => /:(thinggroup|thingtype|policy)\//.test(resource));
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((resource) => !/:(thinggroup|thingtype|policy)\/fleet-\*$/.test(resource))).toEqual([]);
    // The function is told the same prefix.
    expect(sync.environment.SIMROOT_IOT_PREFIX).toBe("fleet-");
  });

  it("stops the synthesis on an integration URL its token would travel to in clear (review 160)", async () => {
    await expect(synthesize("dev", { ...integrationSettings.siem, SIMROOT_SIEM_URL: "http://siem.example/collect" })).rejects.toThrow(
      /SIMROOT_SIEM_URL .*https only/,
    );
  }, 240_000);

  it("stops the synthesis on a prefix that would widen them", async () => {
    await expect(synthesize("dev", { ...integrationSettings.iot, SIMROOT_IOT_PREFIX: "fleet-*" })).rejects.toThrow(/SIMROOT_IOT_PREFIX/);
  }, 240_000);
});

describe("the functions' environment as deployed", () => {
  it("sets only variables each function's own bundle reads, names the app's own resources, and gives each integration's settings to its functions alone", async () => {
    const app = synthesized.get("production with the integrations")!;
    const only = (type: string) => {
      const found = of(app, type);
      expect({ type, count: found.length }).toEqual({ type, count: 1 });
      return found[0]!.outputs;
    };
    const queue = applierQueueOf(app).outputs;
    const keys = of(app, "aws:kms/key:Key");
    // Each resource variable: where the definition says, and with the value its SDK client takes (a queue's URL, a
    // bucket's and a bus's name, a key's ARN).
    const resourceVariables: Record<string, { needed: (definition: FunctionDefinition) => boolean; value: string }> = {
      SIMROOT_BUS_NAME: { needed: (definition) => definition.publishes, value: only("aws:cloudwatch/eventBus:EventBus").name },
      SIMROOT_FEED_KMS_KEY_ID: {
        needed: (definition) => definition.feedKey.length > 0,
        value: keys.find((key) => key.name.startsWith("FeedSigningKey"))!.outputs.arn,
      },
      SIMROOT_SECRETS_KMS_KEY_ID: {
        needed: (definition) => definition.secretsKey.length > 0,
        value: keys.find((key) => key.name.startsWith("SecretsKey"))!.outputs.arn,
      },
      SIMROOT_APPLIER_QUEUE_URL: { needed: (definition) => definition.backlogQueue, value: queue.url! },
      SIMROOT_IOT_DATA_ENDPOINT: { needed: (definition) => definition.feedNotices, value: "https://synth-ats.iot.us-east-1.amazonaws.com" },
      SIMROOT_AUDIT_ARCHIVE_BUCKET: { needed: (definition) => definition.auditArchive ?? false, value: only("aws:s3/bucket:Bucket").name },
    };
    const tableNamesByKey = Object.fromEntries(
      Object.keys(tableDefinitions).map((key) => [
        `SIMROOT_TABLE_${key.toUpperCase()}`,
        of(app, "aws:dynamodb/table:Table").find((table) => table.name.toLowerCase().startsWith(key.toLowerCase()))!.outputs.name,
      ]),
    );
    for (const fn of deployedFunctions(app)) {
      const name = fn.platformName!;
      const variables = fn.environment;
      const { code } = await bundleFunction(name);
      // SST's own (the linked resources' key file, the app's name) and Powertools' service name are read by libraries.
      const ours = Object.keys(variables).filter((variable) => variable.startsWith("SIMROOT_"));
      // A table's variable is composed from its key (core config.ts `tableNames`): its prefix is what the code holds.
      const reads = (variable: string) =>
        code.includes(variable) || (variable.startsWith("SIMROOT_TABLE_") && code.includes("SIMROOT_TABLE_"));
      expect({ function: name, unread: ours.filter((variable) => !reads(variable)) }).toEqual({ function: name, unread: [] });
      // The operator's settings reach every function that reads them (review 62: none was forwarded, so a retired feed
      // key listed after a rotation never reached the functions that verify the archive's checkpoints).
      expect({
        function: name,
        missing: Object.keys(operatorSettings).filter((setting) => reads(setting) && !(setting in variables)),
      }).toEqual({
        function: name,
        missing: [],
      });
      const definition = functions[name] as FunctionDefinition;
      for (const [variable, { needed, value }] of Object.entries(resourceVariables)) {
        expect({ function: name, variable, value: variables[variable] }).toEqual({
          function: name,
          variable,
          value: needed(definition) ? value : undefined,
        });
      }
      const tables = Object.keys(definition.tables).map((key) => `SIMROOT_TABLE_${key.toUpperCase()}`);
      expect({
        function: name,
        tables: Object.fromEntries(ours.filter((variable) => variable.startsWith("SIMROOT_TABLE_")).map((v) => [v, variables[v]])),
      }).toEqual({
        function: name,
        tables: Object.fromEntries(tables.map((variable) => [variable, tableNamesByKey[variable]])),
      });
      // An integration's settings (a SIEM token, a Tailscale API key) reach its own functions and no other.
      for (const [integration, settings] of Object.entries(integrationSettings) as [
        keyof typeof integrationSettings,
        Record<string, string>,
      ][]) {
        const given = Object.keys(settings).filter((setting) => setting in variables);
        expect({ function: name, integration, given }).toEqual({
          function: name,
          integration,
          given: integrationFunctions[integration].includes(name) ? Object.keys(settings) : [],
        });
      }
    }
  }, 120_000);
});
