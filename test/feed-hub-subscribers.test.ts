/**
 * The local feed hub's server-sent-events side (review 157): it carries every tenant's whole signed deltas (device ids,
 * labels, IP bindings), so only the control plane's instances may follow it, by the secret in the hub URL the runtime
 * hands them. Any other process on the machine was served any tenant's topic with no credential, where the MQTT side
 * (IoT Core's stand-in) asks the feed's authorizer about every PEP and gives a key bound to a selector the bare topic only.
 */
import http from "node:http";
import { feedTopic } from "@simroot/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
let other: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
  // Another instance of the deployment, given the hub's URL as instances are.
  other = await startTestRuntime({ tablePrefix: runtime.ports.tables.identity.replace(/identity$/, ""), feedHubUrl: runtime.feedHubUrl });
});
afterAll(async () => {
  await other?.stop();
  await runtime?.stop();
});

/** Opens the topic's stream at `url` with `headers`: its status, and the data it carries in the next `ms`. */
function follow(url: URL, headers: Record<string, string> = {}, ms = 1_500) {
  return new Promise<{ status: number; data: string }>((resolve, reject) => {
    const request = http.get(url, { headers: { accept: "text/event-stream", ...headers } }, (response) => {
      let data = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (data += chunk));
      setTimeout(() => {
        request.destroy();
        resolve({ status: response.statusCode ?? 0, data });
      }, ms);
    });
    request.once("error", (error) => (error.message === "socket hang up" ? undefined : reject(error)));
  });
}

describe("the local feed hub's subscribers", () => {
  it("serves a tenant's topic to the instances it was handed to, and to no one else on the machine", async () => {
    const acme = await tenantClient(runtime, "hub-followed");
    const topic = `/topics/${encodeURIComponent(feedTopic(acme.tenant.id))}`;
    const given = new URL(topic, runtime.feedHubUrl);
    const bare = new URL(given);
    bare.username = "";
    bare.password = "";
    const guessed = new URL(given);
    guessed.username = "hub";
    guessed.password = "guessed";

    const streams = [follow(bare), follow(guessed), follow(bare, { authorization: `Bearer ${acme.token}` }), follow(given)];
    await new Promise((resolve) => setTimeout(resolve, 300));
    // A change of the tenant: its delta is published on the topic.
    const created = await acme.call("POST", "/v1/devices", { imsi: "208019990001234", labels: { site: "lyon" } });
    expect(created.status, created.text).toBe(201);
    const [anyone, guessing, apiKey, instance] = await Promise.all(streams);

    // No credential, a wrong one, or a tenant's own API key (PEPs follow the MQTT side, which authorizes them): refused,
    // and nothing of the tenant's devices sent.
    expect([anyone, guessing, apiKey].map((refused) => refused!.status)).toEqual([401, 401, 401]);
    for (const refused of [anyone, guessing, apiKey]) expect(refused!.data).not.toContain(acme.tenant.id);
    // The URL the runtime hands its instances follows the topic, and the other instance, given it, publishes through it.
    expect(instance!.status).toBe(200);
    expect(instance!.data).toContain(acme.tenant.id);
  });
});
