/**
 * The tenant's feed epoch: a number every signed head carries, which only an admin advances
 * (`POST /v1/feed/epoch`). A PEP refuses a version below the one it holds (a rollback)
 * unless it comes as a snapshot of a higher epoch: after a restore of the control plane from
 * a backup (the tenant's head went back) or a rebuild with a new signing key, an operator
 * advances the epoch and every PEP takes the restored state, while nobody on the path can
 * roll a PEP back (an older epoch is refused, and no one without an admin key can sign a
 * newer one). The epoch is the time of the advance in seconds, at least one above the
 * previous one: an advance after a restore exceeds every epoch issued before the backup was
 * taken, and every epoch PEPs were shown since, as long as the control plane's clock does not
 * go back.
 */
import * as z from "zod";
import type { RequestContext } from "../context.ts";
import { domainEvent } from "../event/event.ts";
import { SimrootError } from "../error.ts";
import type { Outcome } from "../outcome.ts";
import { verb } from "../verb.ts";
import { feedEpochKey, readFeedEpoch } from "./epoch-read.ts";

export { feedEpochKey, readFeedEpoch };

export const feedEpochSchema = z
  .object({
    epoch: z.number().int().nonnegative().meta({ description: "the epoch every signed head of the tenant now carries" }),
    previous: z.number().int().nonnegative(),
    advancedAt: z.string().optional(),
  })
  .meta({ id: "FeedEpoch" });
export type FeedEpoch = z.output<typeof feedEpochSchema>;

const changed = () =>
  new SimrootError("request.precondition_failed", "conflict", "The feed epoch changed meanwhile; try again", { detail: { status: 412 } });

/** Advances the epoch to the current time in seconds, or one above the current epoch when that is higher. Audited. */
export const advanceFeedEpoch = verb(
  z.strictObject({ reason: z.string().min(1).max(500) }),
  async (ports, ctx: RequestContext, input): Promise<Outcome<FeedEpoch>> => {
    const previous = await readFeedEpoch(ports, ctx.tenantId);
    const now = ports.now();
    const epoch = Math.max(previous + 1, Math.floor(now.getTime() / 1000));
    const value: FeedEpoch = { epoch, previous, advancedAt: now.toISOString() };
    const event = domainEvent(ctx, "feed.epoch-advanced", ctx.tenantId, { epoch, previous, reason: input.reason }, now);
    await ports.ledger.commit({
      tenantId: ctx.tenantId,
      events: [event],
      writes: [
        {
          Put: {
            TableName: ports.tables.control,
            Item: { ...feedEpochKey(ctx.tenantId), epoch, advancedAt: value.advancedAt },
            ...(previous === 0
              ? { ConditionExpression: "attribute_not_exists(pk)" }
              : { ConditionExpression: "epoch = :e", ExpressionAttributeValues: { ":e": previous } }),
          },
        },
      ],
      onConditionFailed: changed,
    });
    return { value, events: [event] };
  },
);
