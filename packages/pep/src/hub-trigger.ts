/**
 * Notices from the local control plane's feed hub (packages/local/src/feed-hub.ts: a
 * server-sent-events stream per tenant topic, standing in for IoT Core's MQTT).
 */
import { feedTopic } from "@simroot/core/feed/notifier";
import { subscribeHub } from "@simroot/core/feed/hub-subscriber";
import { noticeTrigger, type FeedTrigger } from "./push.ts";

export function hubTrigger(hubUrl: string): FeedTrigger {
  return noticeTrigger((tenantId, handlers) => subscribeHub(hubUrl, feedTopic(tenantId), handlers));
}
