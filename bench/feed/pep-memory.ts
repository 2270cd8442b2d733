/**
 * A bench child (run with --expose-gc): one PEP takes the snapshot of a tenant; reports the
 * heap its replicated view and engine hold against the bytes of the snapshot it received.
 */
import { createPublicKey } from "node:crypto";
import { FeedSync, PepEngine, PepState } from "@simroot/pep";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");

process.once("message", async (setup: { url: string; apiKey: string; tenantId: string; publicKeyPem: string }) => {
  let snapshotBytes = 0;
  const counting: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    snapshotBytes += (await response.clone().arrayBuffer()).byteLength;
    return response;
  };
  gc();
  const before = process.memoryUsage().heapUsed;
  const state = new PepState(setup.tenantId);
  const engine = new PepEngine(state);
  const sync = new FeedSync({
    url: setup.url,
    apiKey: setup.apiKey,
    publicKeys: [createPublicKey(setup.publicKeyPem)],
    state,
    limit: 5000,
    fetch: counting,
  });
  await sync.snapshot();
  // Compile the policy engine and warm its caches, as a serving PEP would.
  const [first] = state.devices.keys();
  engine.decide({ deviceId: first!, destination: { ip: "10.0.0.1" }, port: 443, protocol: "tcp" });
  gc();
  const heap = process.memoryUsage().heapUsed - before;
  process.send!({ devices: state.devices.size, bindings: state.bindings.size, heap, snapshotBytes, keep: engine.status().version });
});
