/**
 * The one definition of simroot's DynamoDB tables. `infra/database.ts` turns it into
 * `sst.aws.Dynamo` components and the local runtime into CreateTable calls, so the cloud
 * and the laptop cannot drift. Every index names the access pattern it serves.
 */
import { tableKeys, type TableKey } from "./table-keys.ts";

export type AttributeType = "string" | "number" | "binary";

export interface IndexDefinition {
  readonly partitionKey: string;
  readonly sortKey?: string;
  /** The query this index exists for, in words. */
  readonly serves: string;
  /**
   * The non-key attributes the index copies (INCLUDE), when its queries read only those: every
   * write of an item is also a write of its copy, billed by the copy's size. Empty: the keys only
   * (KEYS_ONLY; the query reads the items from the table by key). Absent: all (ALL).
   */
  readonly include?: readonly string[];
}

export interface TableDefinition {
  /** Every attribute used as a key, in the table or an index, with its type. */
  readonly fields: Readonly<Record<string, AttributeType>>;
  readonly partitionKey: string;
  readonly sortKey?: string;
  readonly indexes: Readonly<Record<string, IndexDefinition>>;
  /** Attribute holding an epoch-seconds expiry, when items expire. */
  readonly ttl?: string;
  /** A DynamoDB stream of the new items: the audit table's is the outbox (core's outbox/outbox.ts). */
  readonly stream?: "new-image";
  readonly holds: string;
}

export const tables = {
  identity: {
    holds: "devices, their identifier aliases (IMSI, ICCID, EID, ...), sessions and eUICC profiles, IP bindings, revocation markers",
    fields: { pk: "string", sk: "string", gsi1pk: "string", gsi1sk: "string" },
    partitionKey: "pk",
    sortKey: "sk",
    indexes: {
      byTenant: {
        partitionKey: "gsi1pk",
        sortKey: "gsi1sk",
        serves: "list a tenant's devices in id order, its revoked devices, and its current IP bindings (the feed snapshot)",
        // What the feed snapshot reads: a device's enforcement view, a binding's value, a revocation's view. Not what every
        // fact rewrites (the fact history, the identity state, updatedAt, the revision): a write that changes no copied
        // attribute does not write the index, so an attach or a detach writes no copy of its device (2 write units in the
        // commit's transaction). The device listing reads the devices themselves by key (device/read.ts).
        include: [
          ...["id", "state", "labels", "imsi", "eid", "credentialFingerprint"],
          ...["deviceId", "address", "bearer", "apn", "since", "revokedAt", "view"],
        ],
      },
    },
    // Release tombstones of IP bindings, days after the release (identity/apply-fact.ts `bindingTombstoneSeconds`).
    ttl: "expiresAt",
  },
  control: {
    holds: "tenants, API keys, ingestion sources, idempotency records",
    fields: { pk: "string", sk: "string", gsi1pk: "string", gsi1sk: "string" },
    partitionKey: "pk",
    sortKey: "sk",
    indexes: {
      byTenant: {
        partitionKey: "gsi1pk",
        sortKey: "gsi1sk",
        serves: "list a tenant's API keys and sources",
      },
    },
    ttl: "expiresAt",
  },
  audit: {
    holds:
      "the per-tenant, hash-chained audit trail, one item per event by sequence; it carries the change feed enforcement points poll; " +
      "kept SIMROOT_AUDIT_RETENTION_DAYS (90), archived to S3 before that",
    // The outbox: every committed audit record is an event, published from this stream (never by hand).
    stream: "new-image",
    fields: { pk: "string", sk: "string", gsi1pk: "string", gsi1sk: "string" },
    partitionKey: "pk",
    sortKey: "sk",
    indexes: {
      byDevice: {
        partitionKey: "gsi1pk",
        sortKey: "gsi1sk",
        serves: "a subject's (device's) audit records in time order: those written before 2026-12-03",
        // The keys only, and written no more: since 2026-12-03 a record carries no index key, and the history reader lists it
        // under its subject with a small item of the table (ledger/audit-record.ts `subjectItem`: 1 write unit, where
        // this index's copy cost 2 inside the commit's transaction). The listing reads both until the last record
        // written before has expired (the audit retention, 90 days by default); the index can then be removed.
        include: [],
      },
    },
    // Records and feed versions leave after the audit retention, archived first (core audit/archive.ts).
    ttl: "expiresAt",
  },
  flows: {
    holds: "aggregated flow records enforcement points report, per tenant and day, for anomaly detection",
    fields: { pk: "string", sk: "string" },
    partitionKey: "pk",
    sortKey: "sk",
    indexes: {},
    ttl: "expiresAt",
  },
  automation: {
    holds: "automation rules, outbound webhook subscriptions and their deliveries (durable, with the delivery log), incidents",
    fields: { pk: "string", sk: "string", gsi1pk: "string", gsi1sk: "string" },
    partitionKey: "pk",
    sortKey: "sk",
    indexes: {
      byDue: {
        partitionKey: "gsi1pk",
        sortKey: "gsi1sk",
        serves:
          "the webhook deliveries due for an attempt, by shard (`due#N`) or a failing subscription's queue (`due#T#<tenant>#W#<webhook>`) and due time; the queues' markers (`due#queues`). Sparse: only pending deliveries and markers carry it",
      },
    },
    ttl: "expiresAt",
  },
} as const satisfies Record<TableKey, TableDefinition>;

export { tableKeys, type TableKey };
