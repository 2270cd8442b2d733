/**
 * Drains every rule's SQS dead-letter queue into the tenant's list of dead letters
 * (`/v1/bus/dead-letters`, core `event/dead-letters.ts`): each message becomes a record naming
 * its rule (from the queue it came from), the reason and the event, then leaves the queue. A
 * message that is not a dead letter stays in its queue (reported as a batch item failure).
 */
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import {
  deadLetterOfMessage,
  deadLetterQueueRules,
  documentClient,
  dynamoSettings,
  recordDeadLetter,
  tableNames,
  type Ports,
  type RuleName,
} from "@simroot/core";
import { logger } from "./lib/telemetry.ts";

/** What the drain touches: the control table, nothing else (no ledger, no bus). */
type DrainPorts = Pick<Ports, "db" | "tables" | "now">;
let built: DrainPorts | undefined;
const drainPorts = (): DrainPorts => (built ??= { db: documentClient(dynamoSettings()), tables: tableNames(), now: () => new Date() });

export const handlerFor =
  (ports: () => DrainPorts, rules: () => Record<string, string> = deadLetterQueueRules) =>
  async (event: SQSEvent, context?: Context): Promise<SQSBatchResponse> => {
    if (context) logger.addContext(context);
    const failures: SQSBatchResponse["batchItemFailures"] = [];
    const ruleOfQueue = rules();
    for (const message of event.Records) {
      const rule = ruleOfQueue[message.eventSourceARN];
      const letter = deadLetterOfMessage(message.body, message.messageAttributes, rule as RuleName | undefined);
      try {
        if (!rule || !letter) throw new Error(`not a dead letter of a known rule (queue ${message.eventSourceARN})`);
        await recordDeadLetter(ports(), { rule, ...letter });
      } catch (error) {
        logger.error("dead letter not drained", { messageId: message.messageId, error: String(error) });
        failures.push({ itemIdentifier: message.messageId });
      }
    }
    return { batchItemFailures: failures };
  };

export const handler = handlerFor(drainPorts);
