/// <reference path="./.sst/platform/config.d.ts" />

// SST forbids top-level value imports here: everything lives in `infra/` and is loaded
// inside `run()`. The tables, event rules and functions (with what each may do) are defined
// once, in `packages/core/src/platform/`, and `infra/` only turns them into components.
//
// Stages: `production` keeps everything on removal (`protect`, `retain`, table deletion
// protection, PITR, a retained feed key); any other stage (`dev`, your name, a PR) is
// disposable. See README "Deploying".
export default $config({
  app(input) {
    return {
      name: "simroot",
      home: "aws",
      removal: input?.stage === "production" ? "retain" : "remove",
      protect: input?.stage === "production",
      providers: { aws: { region: "us-east-1" } },
    };
  },
  async run() {
    // First: its `$transform` applies to every function created after it.
    await import("./infra/roles");
    const { tableNameOutputs } = await import("./infra/database");
    // Before the bus: its `$transform` adds the integrations' settings to the consumers it creates.
    const { integrations } = await import("./infra/integrations");
    const { bus, deadLetterQueueUrls } = await import("./infra/bus");
    const { iotAuthorizer } = await integrations();
    const { api } = await import("./infra/api");
    const { history, outbox } = await import("./infra/outbox");
    const { feedKey } = await import("./infra/feed-key");
    const { secretsKey } = await import("./infra/secrets-key");
    const { alarmTopic, dashboard } = await import("./infra/ops");
    await import("./infra/webhooks");
    const { auditArchiver } = await import("./infra/audit-archive");
    const { auditArchive } = await import("./infra/audit-archive-bucket");
    const { feedAuthorizer, feedMqttHost } = await import("./infra/feed-channel");

    return {
      api: api.url,
      bus: bus.name,
      tables: tableNameOutputs,
      deadLetterQueues: deadLetterQueueUrls,
      feedKey: feedKey.arn,
      secretsKey: secretsKey.arn,
      alarmTopic: alarmTopic.arn,
      dashboard: dashboard.dashboardName,
      iotAuthorizer: iotAuthorizer?.name,
      // PEPs on the push channel: `simroot-pep --feed push --mqtt-url mqtts://<feedMqttHost>:443 --mqtt-authorizer <feedAuthorizer>`.
      feedMqttHost,
      feedAuthorizer: feedAuthorizer.name,
      outbox: outbox.apply((s) => s.nodes.function.name),
      history: history.apply((s) => s.nodes.function.name),
      auditArchive: auditArchive.name,
      auditArchiver: auditArchiver.nodes.job.name,
    };
  },
});
