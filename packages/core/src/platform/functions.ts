/**
 * The one definition of simroot's functions and of what each one's code does to which
 * resource. `infra/` grants every function exactly these actions on exactly these resources
 * (no wildcard action, nothing by hand), and `test/permissions.test.ts` builds each function
 * the way SST does and fails when its code sends an SDK command whose IAM action is not
 * declared here (or when a declared action is used by no command: least privilege).
 *
 * A new function (or a new command in an existing one) declares its needs here, and only here.
 */
import { rules, type RuleName } from "./rules.ts";
import { timeouts } from "./limits.ts";
import type { TableKey } from "./tables.ts";

/** DynamoDB item and query actions a function may be granted on a table (never table management). */
export type TableAction =
  | "GetItem"
  | "BatchGetItem"
  | "Query"
  | "PutItem"
  | "UpdateItem"
  | "DeleteItem"
  | "ConditionCheckItem"
  | "BatchWriteItem";

export interface FunctionDefinition {
  /** The module under `functions/src/`, exporting `handler`. */
  readonly handler: string;
  readonly does: string;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  /** The tables it uses and the actions on each (`Query` also covers the table's indexes). */
  readonly tables: Readonly<Partial<Record<TableKey, readonly TableAction[]>>>;
  /** `events:PutEvents` on simroot's bus. */
  readonly publishes: boolean;
  /** `kms:*` actions on the feed's signing key. */
  readonly feedKey: readonly ("Sign" | "GetPublicKey")[];
  /** `kms:*` actions on the key that seals kept secrets (webhook signing keys; core `secrets/sealer.ts`). */
  readonly secretsKey: readonly ("Encrypt" | "Decrypt")[];
  /** `sqs:*` actions on the rules' dead-letter queues (listing and redriving them). */
  readonly deadLetterQueues: readonly ("ReceiveMessage" | "DeleteMessage" | "GetQueueAttributes")[];
  /** `lambda:InvokeFunction` on the rule consumers (redrive hands a dead letter back to its consumer). */
  readonly invokesConsumers: boolean;
  /**
   * `sqs:GetQueueAttributes` on the applier's queue: ingestion answers 503 past its backlog bound
   * (core `ingest/backlog.ts`); every function that bundles the ingest path carries it.
   */
  readonly backlogQueue: boolean;
  /** `iot:Publish` on the feed's topics (`simroot/<tenant>/feed`): an instance that commits tells PEPs the head moved. */
  readonly feedNotices: boolean;
  /** `s3:PutObject` on the audit archive bucket (core `audit/archive.ts`). */
  readonly auditArchive?: boolean;
  /** Verifies the audit chain's signed checkpoints: trusts the retired feed keys an operator lists (`SIMROOT_FEED_RETIRED_PUBLIC_KEYS`). */
  readonly verifiesAudit?: boolean;
  /**
   * The HTTP API's route keys that reach this function (API functions only): `$default`, or a
   * method (or `ANY`) and a path, `{name}` one segment, `{proxy+}` one or more. Where several
   * match, the gateway takes a path without a greedy variable first, then the longest.
   * `test/api-routing.test.ts` holds every route of the app to the function that serves it.
   */
  readonly routes?: readonly string[];
  /** Files the function reads at run time, shipped beside its bundle (`from` the repository root, `to` under /var/task). */
  readonly files?: readonly { readonly from: string; readonly to: string }[];
}

type Tables = FunctionDefinition["tables"];

/**
 * What every function that commits through the ledger needs besides its own writes (core ledger/): the shard heads
 * read and written and read together as the sequencer's cut (BatchGetItem), the audit records and feed versions
 * written and read, and the store revisions of the IP bindings a cut carries (identity BatchGetItem). The sequencer
 * runs wherever a commit is made, over every shard's changes, not only the function's own.
 */
const ledgerTables = {
  // GetItem: a binding written on two shards within one cut, in records from before binding revisions, is served with
  // the store's value (ledger/cut.ts `storeValued`).
  identity: ["GetItem", "BatchGetItem"],
  // UpdateItem: the feed head's moves (sequencer.ts `headUpdate`), which leave what notices told of to the notices.
  control: ["GetItem", "PutItem", "UpdateItem", "BatchGetItem"],
  audit: ["GetItem", "Query", "PutItem"],
} as const satisfies Tables;

/** `tables` and the ledger's needs together. */
function committing(tables: Tables): Tables {
  const merged: Partial<Record<TableKey, TableAction[]>> = {};
  for (const source of [tables, ledgerTables] as Tables[]) {
    for (const [table, actions] of Object.entries(source) as [TableKey, readonly TableAction[]][]) {
      merged[table] = [...new Set([...(merged[table] ?? []), ...actions])];
    }
  }
  return merged;
}

/**
 * What every function that commits does: it publishes each sequencing's notice (`feedNotices`) carrying the change,
 * signed with the feed key (core `noticeSealer`: `kms:Sign`, and `kms:GetPublicKey` for the key's id), so that PEPs on
 * the channel apply it without a request. The key signs what these functions could already commit to the ledger.
 */
const consumer = {
  timeoutSeconds: timeouts.consumerFunctionSeconds,
  memoryMb: 1024,
  feedKey: ["Sign", "GetPublicKey"],
  secretsKey: [],
  deadLetterQueues: [],
  invokesConsumers: false,
  feedNotices: true,
  backlogQueue: true,
} as const;

/** The tables of a consumer that reads and writes but never deletes (the detectors, the integrations). */
const noDeleteTables = committing({
  identity: ["GetItem", "Query", "PutItem"],
  control: ["GetItem", "Query", "PutItem"],
  audit: ["GetItem", "Query", "PutItem"],
});

/**
 * The tables of an outside integration (IoT Core, Tailscale): a consumer's, and the delivery plan it writes before
 * acting and takes back when it came to nothing (integration/delivery.ts `abandonDelivery`: a delete in the control table).
 */
const integrationTables = committing({ ...noDeleteTables, control: ["GetItem", "Query", "PutItem", "DeleteItem"] });

/** What applying an operator fact or replaying a parked one does: the identity fold, parking, the ledger. */
/** A function an event source mapping invokes with what it read (a stream, a queue): nothing but its tables and bus. */
const streamReader = {
  timeoutSeconds: timeouts.consumerFunctionSeconds,
  memoryMb: 512,
  feedKey: [],
  secretsKey: [],
  deadLetterQueues: [],
  invokesConsumers: false,
  feedNotices: false,
  backlogQueue: false,
} as const;

const applyTables = committing({
  // UpdateItem: the bind of an address a revocation released clears it from the revoked device's marker (identity/apply-fact.ts).
  identity: ["GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"],
  control: ["GetItem", "Query", "PutItem", "DeleteItem"],
  audit: ["GetItem", "Query", "PutItem"],
});

/** The tables every API function uses, as the whole API did (the permission test checks actions, not which table each is on). */
const apiTables = committing({
  identity: ["GetItem", "Query", "PutItem", "DeleteItem"],
  control: ["GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"],
  audit: ["GetItem", "Query", "PutItem"],
  flows: ["Query", "PutItem"],
});

/** The API functions that list a subject's audit records: by keys from the listing items (and the byDevice index), then BatchGetItem. */
const apiTablesListingAudit = committing({ ...apiTables, audit: [...apiTables.audit!, "BatchGetItem"] });

/** What every API function is: a consumer's grants (see `consumer`), the gateway's timeout, the bus. */
const apiFunction = { ...consumer, timeoutSeconds: timeouts.apiFunctionSeconds, publishes: true } as const;

/** The functions behind the HTTP API, one per route group (api `groups/`). */
export const apiFunctionNames = ["api", "apiPolicy", "apiIngest", "apiEnforcement", "apiAutomation"] as const;
export type ApiFunctionName = (typeof apiFunctionNames)[number];

export const functions = {
  api: {
    ...apiFunction,
    handler: "api.ts",
    does: "serves the management API (devices, access, health) and the API's documents: every path no other API function routes",
    routes: ["$default"],
    // A device's timeline lists its audit records. ConditionCheckItem: a change of the tenant's keys checks, in its
    // transaction, that the key making it is still not revoked (access/keys.ts, review 112); a registration, that no
    // device holds the other spelling of its ICCIDs (device/register.ts, review 119). A person's relabel marks the
    // labels as set at its revision, so that a rule acting on a late event of an earlier change leaves them
    // (automation/label-order.ts).
    tables: {
      ...apiTablesListingAudit,
      identity: [...apiTablesListingAudit.identity!, "ConditionCheckItem"],
      control: [...apiTablesListingAudit.control!, "ConditionCheckItem"],
      automation: ["PutItem"],
    },
    // /docs serves Scalar's pinned standalone bundle (api's docs.ts): node_modules is not in the function.
    files: [
      { from: "node_modules/@scalar/api-reference/package.json", to: "scalar/package.json" },
      { from: "node_modules/@scalar/api-reference/dist/browser/standalone.js", to: "scalar/dist/browser/standalone.js" },
      // What `/openapi.json` and `/asyncapi.json` serve (api `documents.ts`): written by `npm run contracts`.
      { from: "packages/api/openapi.json", to: "openapi.json" },
      { from: "packages/api/asyncapi.json", to: "asyncapi.json" },
      // The web console at /console/ (api routes/reference.ts), a directory: built by `npm install` or `npm ci` (the
      // root `prepare` script) and `npm run console:build`; without it `sst deploy` stops, naming the missing path
      // (review 118: not shipped, /console/ answered 503 in AWS).
      { from: "packages/console/dist", to: "console" },
    ],
  },
  apiPolicy: {
    ...apiFunction,
    handler: "api-policy.ts",
    does:
      "serves policy: segments' rules, the enforcement settings and the decisions they make (apart from the management API, whose bundle they took over budget), " +
      "and the traffic PEPs report, which a policy's preview is judged against (apart from the automation function, for the same reason); " +
      "the time-limited grants PEPs enforce (apart from the enforcement function, for the same reason)",
    routes: [
      "ANY /v1/policies",
      "ANY /v1/policies/{proxy+}",
      "ANY /v1/decisions/{proxy+}",
      "ANY /v1/enforcement",
      "ANY /v1/traffic",
      "ANY /v1/source-health",
      "ANY /v1/grants",
      "ANY /v1/grants/{proxy+}",
    ],
    tables: apiTables,
  },
  apiIngest: {
    ...apiFunction,
    handler: "api-ingest.ts",
    does: "serves ingestion: operator webhooks in, their sources, the events parked for replay",
    routes: [
      "ANY /v1/ingest/{proxy+}",
      "ANY /v1/sources",
      "ANY /v1/sources/{proxy+}",
      "ANY /v1/dead-letters",
      "ANY /v1/dead-letters/{proxy+}",
    ],
    tables: apiTables,
  },
  apiEnforcement: {
    ...apiFunction,
    handler: "api-enforcement.ts",
    // `/v1/audit/verify` starts from the archive's signed checkpoint (core audit/audit.ts).
    verifiesAudit: true,
    does: "serves what enforcement points call and what checks them: the signed feed, flow reports, the audit trail, the live view (the one API function that serves signed feeds)",
    routes: ["ANY /v1/feed", "ANY /v1/feed/{proxy+}", "ANY /v1/flows", "ANY /v1/audit", "ANY /v1/audit/{proxy+}", "ANY /v1/live"],
    tables: {
      ...apiTablesListingAudit,
      // BatchGetItem: narrowing the feed to a scope reads its devices and bindings in batches (feed/scope.ts).
      identity: ["GetItem", "BatchGetItem", "Query", "PutItem", "DeleteItem"],
      // A flow report is stored, then checked against its devices' and segments' baselines (anomaly/), which it learns.
      flows: ["BatchGetItem", "Query", "PutItem", "UpdateItem"],
    },
    feedKey: ["Sign", "GetPublicKey"],
  },
  apiAutomation: {
    ...apiFunction,
    handler: "api-automation.ts",
    does: "serves continuous verification: automation rules, webhooks, incidents, integrations (the OCSF export among them), the bus's dead letters",
    routes: [
      "ANY /v1/automation/{proxy+}",
      "ANY /v1/webhooks",
      "ANY /v1/webhooks/{proxy+}",
      "ANY /v1/incidents",
      "ANY /v1/incidents/{proxy+}",
      "ANY /v1/integrations/{proxy+}",
      // The audit trail and flows as OCSF events, for a SIEM (moved from the enforcement function, whose bundle it took
      // to the edge of its budget: that function is the one every PEP's poll cold-starts).
      "ANY /v1/ocsf/{proxy+}",
      "ANY /v1/bus/{proxy+}",
    ],
    // Rules, webhook subscriptions and their deliveries (core automation/, webhook/).
    tables: { ...apiTablesListingAudit, automation: ["GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"] },
    // Creates subscriptions (seals their secrets); a replay attempts a delivery (opens one).
    secretsKey: ["Encrypt", "Decrypt"],
    // A redrive hands a dead letter back to its rule's consumer (Lambda Invoke, asynchronous), or publishes a held one.
    invokesConsumers: true,
  },
  parkedReconciler: {
    ...consumer,
    handler: rules.parkedReconciler.handler,
    does: rules.parkedReconciler.does,
    // Control BatchGetItem (granted with the ledger's needs): a registration also reads the parked facts its identifiers
    // index (ingest/parked.ts).
    tables: applyTables,
    publishes: true,
  },
  operatorEvents: {
    ...consumer,
    handler: rules.operatorEvents.handler,
    does: rules.operatorEvents.does,
    tables: applyTables,
    publishes: true,
  },
  detectors: {
    ...consumer,
    handler: rules.detectors.handler,
    does: rules.detectors.does,
    tables: {
      ...noDeleteTables,
      identity: ["GetItem", "BatchGetItem", "Query", "PutItem"],
      // BatchGetItem: the baselines of a flow report's devices and segments (anomaly/baseline-store.ts).
      flows: ["GetItem", "BatchGetItem", "Query", "PutItem", "UpdateItem"],
    },
    publishes: true,
  },
  profileSwitches: {
    ...consumer,
    handler: rules.profileSwitches.handler,
    does: rules.profileSwitches.does,
    tables: {
      ...noDeleteTables,
      identity: ["GetItem", "BatchGetItem", "Query", "PutItem"],
      // BatchGetItem: the baselines of a flow report's devices and segments (anomaly/baseline-store.ts).
      flows: ["GetItem", "BatchGetItem", "Query", "PutItem", "UpdateItem"],
    },
    publishes: true,
  },
  automation: {
    ...consumer,
    handler: rules.automation.handler,
    does: rules.automation.does,
    tables: { ...applyTables, automation: ["GetItem", "Query", "PutItem", "UpdateItem"], flows: ["Query"] },
    publishes: true,
  },
  webhooks: {
    ...consumer,
    handler: rules.webhooks.handler,
    does: rules.webhooks.does,
    // A 410 disables the subscription through the ledger.
    tables: committing({ automation: ["GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"] }),
    publishes: true,
    // Opens a subscription's secret to sign each attempt (the sealer's module also names Encrypt).
    secretsKey: ["Encrypt", "Decrypt"],
  },
  iotSync: { ...consumer, handler: rules.iotSync.handler, does: rules.iotSync.does, tables: integrationTables, publishes: true },
  postureSync: {
    ...consumer,
    handler: rules.postureSync.handler,
    does: rules.postureSync.does,
    tables: integrationTables,
    publishes: true,
  },
  // The SIEM consumer maps the event it is given to OCSF and sends it: no table (the event carries its actor and time).
  siemExport: {
    ...consumer,
    handler: rules.siemExport.handler,
    does: rules.siemExport.does,
    tables: {},
    publishes: false,
    feedKey: [],
    feedNotices: false,
    backlogQueue: false,
  },
  // Not a rule consumer: every rule's SQS dead-letter queue invokes it (infra/bus.ts); it records each dead letter.
  // The code reads no queue: the event source mapping does, with the role infra gives it.
  deadLetterDrain: {
    ...streamReader,
    handler: "dead-letter-drain.ts",
    does: "records what reaches each rule's dead-letter queue in the tenant's list of dead letters (/v1/bus/dead-letters)",
    tables: { control: ["PutItem"] },
    publishes: false,
  },
  // Not a rule consumer: the audit table's stream invokes it (infra/outbox.ts). It reads no audit item (the mapping does).
  outbox: {
    ...streamReader,
    handler: "outbox.ts",
    does: "publishes the events of committed audit records from the audit table's stream (the outbox)",
    // The tenants' interests: which opt-in consumers (webhooks, automation) each event is for (core outbox/interests.ts).
    // (A kind a tenant's mark does not name yet: whether it has records of it, written down once.)
    // Control PutItem: an event the bus refuses for good becomes its tenant's dead letter (core outbox/outbox.ts).
    tables: { automation: ["BatchGetItem", "Query", "UpdateItem"], control: ["PutItem"] },
    publishes: true,
  },
  // Not a rule consumer: the audit table's stream invokes it too, by its own mapping (infra/outbox.ts).
  history: {
    ...streamReader,
    handler: "history.ts",
    does:
      "writes what each committed audit record projects: the record listed under its subject, its IP lease edges (core outbox.ts); " +
      "sequences records their committer left behind (the feed's backstop: core ledger/catch-up.ts)",
    // Idempotent puts: the listing item (audit), the lease items (identity); and the ledger's sequencing, announced.
    // UpdateItem: the trailing notice of a burst marks the feed head told (catch-up.ts `announceTrailing`).
    tables: committing({ audit: ["BatchWriteItem"], identity: ["BatchWriteItem"], control: ["UpdateItem"] }),
    publishes: false,
    feedNotices: true,
  },
  // Not a rule consumer: AWS IoT Core invokes it for each MQTT CONNECT to the feed's push channel (infra/feed-channel.ts).
  feedAuthorizer: {
    ...streamReader,
    handler: "feed-authorizer.ts",
    does: "decides which PEPs may follow a tenant's feed notices on AWS IoT Core: by their feed API key (core feed/subscriber-authorizer.ts)",
    timeoutSeconds: 5,
    memoryMb: 256,
    // The API key's record (access/api-key.ts); a key's failed authentications, counted (access/auth-failures.ts).
    tables: { control: ["GetItem", "UpdateItem"] },
    publishes: false,
  },
  // Not a rule consumer: a schedule runs it every minute (infra/webhooks.ts). It runs the webhooks consumer's delivery
  // code, and so needs what that consumer needs: a 410 disables the subscription through the ledger (whose commit is
  // announced, signed), and a delivery's outcome is published.
  webhookWorker: {
    ...consumer,
    handler: "webhook-worker.ts",
    does: "attempts the outbound webhook deliveries that are due: retries on their backoff, replays, attempts a killed instance left leased (every minute)",
    tables: committing({ automation: ["GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"] }),
    publishes: true,
    // Opens a subscription's sealed signing secret to sign each attempt (the sealer's module also names Encrypt).
    secretsKey: ["Encrypt", "Decrypt"],
  },
  // Not a rule consumer: AWS IoT Core invokes it for each MQTT CONNECT of a device (infra/integrations.ts), and only
  // when the IoT integration is configured (`SIMROOT_IOT_TENANT_ID` in the deploying shell).
  iotAuthorizer: {
    ...streamReader,
    handler: "iot-authorizer.ts",
    does: "decides which devices may connect to AWS IoT Core over MQTT, by their SIM's IoT SAFE credential (core integration/iot)",
    timeoutSeconds: 5,
    memoryMb: 256,
    // Reads the device, its bindings and the tenant's policy; writes only the connections it let in, for IoT's refreshes
    // of them (functions/src/iot-authorizer.ts builds ports with no ledger or bus, so its bundle holds no commit path).
    tables: { identity: ["GetItem", "Query", "BatchGetItem"], control: ["GetItem", "Query", "PutItem"] },
    publishes: false,
  },
  // Not a rule consumer: an hourly schedule runs it (infra/audit-archive.ts).
  auditArchiver: {
    ...streamReader,
    handler: "audit-archiver.ts",
    does: "copies every tenant's audit trail, verified, to the archive bucket before DynamoDB's TTL removes it (hourly)",
    timeoutSeconds: 900,
    memoryMb: 1024,
    // The tenant list and the archive checkpoints (control); the records and feed versions it walks (audit).
    // (BatchGetItem: its bundle holds the audit listing, which reads a subject's records by key.) A feed head left
    // one behind is moved forward first (the version past it: audit GetItem; the head: control UpdateItem).
    tables: { control: ["GetItem", "Query", "PutItem", "UpdateItem"], audit: ["Query", "GetItem", "BatchGetItem"] },
    publishes: false,
    // Signs the archive checkpoint with the feed key, as the audit checkpoints are.
    feedKey: ["Sign", "GetPublicKey"],
    auditArchive: true,
    verifiesAudit: true,
    // Announces a feed head it moved forward (core audit/archive.ts).
    feedNotices: true,
  },
} as const satisfies Record<
  | ApiFunctionName
  | "outbox"
  | "history"
  | "deadLetterDrain"
  | "webhookWorker"
  | "iotAuthorizer"
  | "auditArchiver"
  | "feedAuthorizer"
  | RuleName,
  FunctionDefinition
>;

export type FunctionName = keyof typeof functions;
export const functionNames = Object.keys(functions) as FunctionName[];

/** An IAM statement, resource-agnostic: infra fills in the ARNs. */
export interface Grant {
  readonly actions: readonly string[];
  readonly on:
    | { readonly table: TableKey; readonly indexes: boolean }
    | { readonly bus: true }
    | { readonly feedKey: true }
    | { readonly secretsKey: true }
    | { readonly deadLetterQueues: true }
    | { readonly consumers: true }
    | { readonly feedTopics: true }
    | { readonly applierQueue: true }
    | { readonly auditArchive: true };
}

/** The grants of a function: one statement per resource, every action named. */
export function grantsOf(definition: FunctionDefinition): Grant[] {
  const grants: Grant[] = Object.entries(definition.tables).map(([table, actions]) => ({
    actions: [...new Set(actions)].map((action) => `dynamodb:${action}`),
    on: { table: table as TableKey, indexes: actions!.includes("Query") },
  }));
  if (definition.publishes) grants.push({ actions: ["events:PutEvents"], on: { bus: true } });
  if (definition.feedKey.length > 0) grants.push({ actions: definition.feedKey.map((a) => `kms:${a}`), on: { feedKey: true } });
  if (definition.secretsKey.length > 0) grants.push({ actions: definition.secretsKey.map((a) => `kms:${a}`), on: { secretsKey: true } });
  if (definition.deadLetterQueues.length > 0) {
    grants.push({ actions: definition.deadLetterQueues.map((a) => `sqs:${a}`), on: { deadLetterQueues: true } });
  }
  if (definition.invokesConsumers) grants.push({ actions: ["lambda:InvokeFunction"], on: { consumers: true } });
  if (definition.feedNotices) grants.push({ actions: ["iot:Publish"], on: { feedTopics: true } });
  if (definition.backlogQueue) grants.push({ actions: ["sqs:GetQueueAttributes"], on: { applierQueue: true } });
  if (definition.auditArchive) grants.push({ actions: ["s3:PutObject"], on: { auditArchive: true } });
  return grants;
}
