/**
 * `npm start`: the control plane on its embedded defaults. DynamoDB Local and the bus
 * journal persist under SIMROOT_DATA_DIR (default `.data/`), the API listens on PORT
 * (default 3000), and the first run creates a tenant with an admin key, printed once.
 */
import { resolve } from "node:path";
import { createTenantWithAdminKey, isSimrootError, localSettings } from "@simroot/core";
import { startLocalRuntime } from "./runtime.ts";

const settings = localSettings();
const dataDir = resolve(settings.dataDir);
const started = performance.now();
const runtime = await startLocalRuntime({
  dataDir,
  port: settings.port,
  hostname: settings.host,
  dynamoPort: settings.dynamoPort,
  dynamoEndpoint: settings.dynamoEndpoint,
  logRequests: settings.logRequests,
  ...(settings.feedMqttPort === undefined ? {} : { feedMqttPort: settings.feedMqttPort }),
});

try {
  const { tenant, token } = await createTenantWithAdminKey(runtime.ports, "default", { pk: "bootstrap", sk: "bootstrap" });
  console.log(
    [
      "",
      `First run: created tenant ${tenant.id} ("default") and its admin API key. It is shown this once only:`,
      "",
      `  ${token}`,
      "",
      `  export SIMROOT_API_KEY=${token}`,
      "",
    ].join("\n"),
  );
} catch (error) {
  if (!(isSimrootError(error) && error.kind === "conflict")) throw error;
}

console.log(
  [
    `simroot is listening on ${runtime.url} (started in ${Math.round(performance.now() - started)} ms)`,
    `  health:   ${runtime.url}/health`,
    `  openapi:  ${runtime.url}/openapi.json`,
    `  data:     ${dataDir}`,
    `  dynamodb: ${runtime.endpoint}`,
    // PEPs follow their tenant's feed notices here (simroot-pep --feed push --mqtt-url ...), as they do on AWS IoT Core.
    ...(runtime.feedMqttUrl ? [`  feed mqtt: ${runtime.feedMqttUrl}`] : []),
  ].join("\n"),
);

let stopping = false;
async function shutdown(reason: string) {
  if (stopping) return;
  stopping = true;
  console.log(`stopping (${reason})`);
  await runtime.stop();
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
// When whoever started us (npm) is killed outright, we are orphaned: stop rather than linger on the ports.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) void shutdown("parent process exited");
}, 1000).unref();
