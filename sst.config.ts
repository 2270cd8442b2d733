/// <reference path="./.sst/platform/config.d.ts" />

// SST forbids top-level value imports here: everything lives in `infra/` and is loaded
// inside `run()`. The tables and event rules themselves are defined once, in
// `packages/core/src/platform/`, and `infra/` only turns them into components.
export default $config({
  app(input) {
    return {
      name: "simroot",
      home: "aws",
      removal: input?.stage === "production" ? "retain" : "remove",
      protect: input?.stage === "production",
    };
  },
  async run() {
    const { tableNameOutputs } = await import("./infra/database");
    // Before the bus: its `$transform` adds the integrations' settings to the consumers it creates.
    const { integrations } = await import("./infra/integrations");
    const { bus, deadLetterQueueUrls } = await import("./infra/bus");
    const { iotAuthorizer } = await integrations();
    const { api } = await import("./infra/api");

    return {
      api: api.url,
      bus: bus.name,
      tables: tableNameOutputs,
      deadLetterQueues: deadLetterQueueUrls,
      iotAuthorizer: iotAuthorizer?.name,
    };
  },
});
