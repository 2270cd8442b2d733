/**
 * The push channel in AWS: AWS IoT Core. An instance that commits publishes the tenant's new
 * head through the IoT data plane's HTTPS Publish (`POST /topics/<topic>?qos=1`, SigV4); IoT
 * Core fans it out to every PEP subscribed over MQTT, so no PEP holds a Lambda instance. The
 * local feed hub answers the same Publish request, so the laptop runs this very client.
 */
import type { IoTDataPlaneClient } from "@aws-sdk/client-iot-data-plane";
import { iotDataEndpoint } from "../config.ts";
import { lazy, sdkClientSettings } from "../store/sdk-settings.ts";
import { coalescing, feedBareTopic, feedTopic, noticePayload, type FeedNotifier } from "./notifier.ts";

export interface IotNotifierOptions {
  /** Told of a failed publish (the PEPs' fallback poll still finds the change). */
  readonly onError?: (error: unknown) => void;
  /** Receives notices from the channel (the local hub does; in AWS, instances do not subscribe). */
  readonly subscribe?: FeedNotifier["subscribe"];
}

/** Publishes notices with `client`: a client, or one built on first use (`iotDataClient`). */
export function iotFeedNotifier(
  client: IoTDataPlaneClient | (() => Promise<IoTDataPlaneClient>),
  options: IotNotifierOptions = {},
): FeedNotifier {
  // The package is loaded on the first notice, not at module init (`lazy`), and once.
  const iot = lazy(async () => {
    const { PublishCommand } = await import("@aws-sdk/client-iot-data-plane");
    return { client: typeof client === "function" ? await client() : client, PublishCommand };
  });
  const { publish, settled } = coalescing(async (notice) => {
    const { client: sender, PublishCommand } = await iot();
    // With its delta to the keys that may read the whole tenant's feed; bare to those bound to a selector.
    const bare = noticePayload({ tenantId: notice.tenantId, version: notice.version });
    // Both settled before the publish is: one failing first must not leave the other in flight past `settled`.
    const sent = await Promise.allSettled([
      sender.send(
        new PublishCommand({ topic: feedTopic(notice.tenantId), qos: 1, payload: noticePayload(notice), contentType: "application/json" }),
      ),
      sender.send(new PublishCommand({ topic: feedBareTopic(notice.tenantId), qos: 1, payload: bare, contentType: "application/json" })),
    ]);
    const failed = sent.find((each) => each.status === "rejected");
    if (failed) throw failed.reason;
  }, options.onError);
  return { publish, settled, ...(options.subscribe ? { subscribe: options.subscribe } : {}) };
}

/**
 * The IoT data plane client for `SIMROOT_IOT_DATA_ENDPOINT` (the account's `iot:Data-ATS` endpoint), built on first use:
 * its package is loaded then, not at module init (`lazy`).
 */
export function iotDataClient(endpoint: string, region?: string): () => Promise<IoTDataPlaneClient> {
  return lazy(async () => {
    const { IoTDataPlaneClient } = await import("@aws-sdk/client-iot-data-plane");
    // The SDK timeouts every client shares: a publish that hangs must not hold the function that waits for it.
    return new IoTDataPlaneClient({ ...sdkClientSettings(), endpoint, ...(region ? { region } : {}) });
  });
}

/**
 * A Lambda's notifier from its environment: IoT Core at `SIMROOT_IOT_DATA_ENDPOINT` (infra sets it for every function
 * the platform definition says publishes notices), or none.
 */
export function environmentFeedNotifier(onError?: (error: unknown) => void): FeedNotifier | undefined {
  const endpoint = iotDataEndpoint();
  return endpoint ? iotFeedNotifier(iotDataClient(endpoint), onError ? { onError } : {}) : undefined;
}
