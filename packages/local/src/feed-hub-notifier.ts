/**
 * A local instance's feed notifier: publishes through the feed hub with the AWS IoT data plane
 * client itself (the code path Lambda runs against IoT Core), and subscribes to the hub's
 * stream, so that instances sharing nothing but the hub wake each other's long polls.
 */
import { IoTDataPlaneClient } from "@aws-sdk/client-iot-data-plane";
import { feedTopic, iotFeedNotifier, parseHeadMoved, sdkClientSettings, type FeedNotifier } from "@simroot/core";
import { subscribeHub } from "@simroot/core/feed/hub-subscriber";

export function hubFeedNotifier(hubUrl: string): FeedNotifier & { destroy(): void } {
  // The hub checks no signature on a publish; the client signs anyway, as it would for IoT Core. The hub's secret (the
  // URL's user name and password) is for following its topics only.
  const endpoint = new URL(hubUrl);
  endpoint.username = "";
  endpoint.password = "";
  const client = new IoTDataPlaneClient({
    ...sdkClientSettings(),
    endpoint: endpoint.origin,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  const notifier = iotFeedNotifier(client, {
    subscribe(tenantId, listener) {
      const subscription = subscribeHub(hubUrl, feedTopic(tenantId), {
        onMessage: (payload) => {
          const notice = parseHeadMoved(payload);
          if (notice?.tenantId === tenantId) listener(notice);
        },
        onConnected: () => listener(undefined),
      });
      return () => subscription.close();
    },
  });
  return { ...notifier, destroy: () => client.destroy() };
}
