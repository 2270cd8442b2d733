/**
 * Stopping the local control plane (Ctrl-C, SIGTERM) while enforcement points hold feed connections open (review 57:
 * with a PEP streaming the feed, the listener closed but the process never exited, and the PEP kept receiving freshly
 * signed heads from a control plane nobody else could reach).
 */
import { describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient } from "./support/runtime.ts";

describe("stopping the local control plane", () => {
  it("ends within seconds while a PEP streams the feed and another long-polls it, and their connections end", async () => {
    const runtime = await startTestRuntime({ port: 0 });
    const admin = await tenantClient(runtime);
    const pep = (await admin.call("POST", "/v1/keys", { name: "edge-1", role: "pep" })).json.token as string;
    const head = (await admin.call("GET", "/v1/feed?since=0", undefined, { authorization: `Bearer ${pep}` })).json.signed.head.version;
    const open = (accept: string) =>
      fetch(`${runtime.url}/v1/feed?since=${head}&wait=20`, { headers: { authorization: `Bearer ${pep}`, accept } });
    const stream = await open("text/event-stream");
    expect(stream.headers.get("content-type")).toContain("text/event-stream");
    const streamEnded = stream.body!.pipeTo(new WritableStream()).then(
      () => "ended",
      () => "ended",
    );
    const poll = open("application/json").then(
      () => "ended",
      () => "ended",
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    await runtime.stop();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(
      await Promise.race([Promise.all([streamEnded, poll]), new Promise((resolve) => setTimeout(() => resolve("open"), 2_000))]),
    ).toEqual(["ended", "ended"]);
  });
});
