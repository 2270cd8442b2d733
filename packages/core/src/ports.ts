import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { TableNames } from "./config.ts";
import type { Redeliver } from "./event/dead-letter-record.ts";
import type { Publisher } from "./event/event.ts";
import type { FeedNotifier } from "./feed/notifier.ts";
import type { Backlog } from "./ingest/backlog.ts";
import type { Ledger } from "./ledger/ledger.ts";
import type { MetricsSink } from "./platform/metrics.ts";
import type { SecretSealer } from "./secrets/sealer.ts";
import type { WebhookTargets } from "./webhook/target.ts";

/** Everything a verb may touch outside itself. Adapters provide them; tests pass real ones. */
export interface Ports {
  readonly db: DynamoDBDocumentClient;
  readonly tables: TableNames;
  readonly publisher: Publisher;
  /** The one path by which state changes commit (with their audit records and feed entries). */
  readonly ledger: Ledger;
  readonly now: () => Date;
  /** The feed's push channel (AWS IoT Core, the local feed hub); without it, instances learn of others' commits by polling the head. */
  readonly feedNotifier?: FeedNotifier;
  /** What waits for the applier; ingestion refuses work past its bound. Without it, ingestion is unbounded. */
  readonly backlog?: Backlog;
  /** Hands a dead-lettered event back to one rule's consumer (event/dead-letters.ts); absent where nothing can. */
  readonly redeliver?: Redeliver;
  /** Seals the secrets simroot keeps (webhook signing keys); without it they cannot be created or used. */
  readonly secrets?: SecretSealer;
  /** Records the figures operators watch (platform/metrics.ts); absent where nothing collects them. */
  readonly metrics?: MetricsSink;
  /** Where outbound webhooks may be delivered (webhook/target.ts): public addresses only unless "any" (the local runtime). */
  readonly webhookTargets?: WebhookTargets;
}
