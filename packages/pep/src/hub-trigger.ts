/**
 * Notices from the local control plane's feed hub (packages/local/src/feed-hub.ts: a
 * server-sent-events stream per tenant topic, standing in for IoT Core's MQTT).
 */
import { feedBareTopic, feedTopic } from "@simroot/core/feed/notifier";
import { subscribeHub } from "@simroot/core/feed/hub-subscriber";
import { noticeTrigger, type FeedTrigger } from "./push.ts";

/** `bare`: the version alone, as a PEP narrowed to a selector follows the channel (mqtt-trigger.ts). */
export function hubTrigger(hubUrl: string, options: { readonly bare?: boolean } = {}): FeedTrigger {
  return noticeTrigger((tenantId, handlers) => subscribeHub(hubUrl, (options.bare ? feedBareTopic : feedTopic)(tenantId), handlers));
}
