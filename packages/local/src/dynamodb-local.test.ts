import { spawnSync } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CreateTableCommand, DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { claimPort, startDynamoLocal } from "./dynamodb-local.ts";

const client = (endpoint: string, accessKeyId = "x") =>
  new DynamoDBClient({ endpoint, region: "us-east-1", credentials: { accessKeyId, secretAccessKey: "x" }, maxAttempts: 1 });

const tableNamed = (name: string) =>
  new CreateTableCommand({
    TableName: name,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
  });

describe("the DynamoDB Local launcher", () => {
  it("refuses a port that is already taken instead of starting a JVM that cannot serve", async () => {
    const holder = createServer();
    const port = await new Promise<number>((resolve) =>
      holder.listen(0, "127.0.0.1", () => resolve((holder.address() as { port: number }).port)),
    );
    try {
      await expect(startDynamoLocal({ port })).rejects.toThrow(`Port ${port} is already in use`);
    } finally {
      holder.close();
    }
  });

  it("persists tables under dbPath across a stop and start on the same port", { timeout: 60_000 }, async () => {
    const dbPath = await mkdtemp(join(tmpdir(), "simroot-ddb-"));
    const port = await claimPort();
    const first = await startDynamoLocal({ dbPath, port });
    await client(first.endpoint).send(tableNamed("kept"));
    await first.stop();

    const second = await startDynamoLocal({ dbPath, port });
    const { TableNames } = await client(second.endpoint).send(new ListTablesCommand({}));
    expect(TableNames).toEqual(["kept"]);
    await second.stop();
    await expect(client(second.endpoint).send(new ListTablesCommand({}))).rejects.toThrow();
  });

  it("keeps a database per access key when not shared, as the tests' instance runs (a file's tables are its own)", {
    timeout: 60_000,
  }, async () => {
    const local = await startDynamoLocal({ sharedDb: false });
    try {
      await client(local.endpoint, "fileone").send(tableNamed("mine"));
      const names = async (key: string) => (await client(local.endpoint, key).send(new ListTablesCommand({}))).TableNames;
      expect(await names("fileone")).toEqual(["mine"]);
      expect(await names("filetwo")).toEqual([]);
    } finally {
      await local.stop();
    }
  });

  it("says how to install Java when there is none", () => {
    // Run the launcher in a child whose PATH has no java.
    const script = `import { startDynamoLocal } from ${JSON.stringify(join(import.meta.dirname, "dynamodb-local.ts"))};
      startDynamoLocal().catch((error) => { console.error(error.message); process.exit(3); });`;
    const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      env: { ...process.env, PATH: "/nonexistent" },
      encoding: "utf8",
    });
    expect(result.status).toBe(3);
    expect(result.stderr).toContain("needs Java 17");
    expect(result.stderr).toContain("apt-get install -y openjdk-17-jre-headless");
  });
});

describe("DynamoDB Local supervision", () => {
  it("starts the JVM again, on the same port and data, when it dies", { timeout: 90_000 }, async () => {
    const dbPath = await mkdtemp(join(tmpdir(), "simroot-ddb-"));
    const dynamo = await startDynamoLocal({ dbPath, restart: true });
    try {
      await client(dynamo.endpoint).send(tableNamed("survives"));
      const before = dynamo.jvmPid()!;
      process.kill(before, "SIGKILL");
      await expect(client(dynamo.endpoint).send(new ListTablesCommand({}))).rejects.toThrow();
      const deadline = Date.now() + 60_000;
      while (dynamo.restarts() === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
      expect(dynamo.restarts()).toBe(1);
      expect(dynamo.jvmPid()).not.toBe(before);
      const { TableNames } = await client(dynamo.endpoint).send(new ListTablesCommand({}));
      expect(TableNames).toEqual(["survives"]);
    } finally {
      await dynamo.stop();
    }
  });
});
