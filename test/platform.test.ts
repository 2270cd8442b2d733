import { existsSync } from "node:fs";
import { join } from "node:path";
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rules, tableKeys, tables, type TableDefinition } from "@simroot/core";
import { functions } from "@simroot/core/platform/functions";
import { validatePattern } from "@simroot/core";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";

const root = join(import.meta.dirname, "..");

describe("the one definition of tables and rules", () => {
  it.each(tableKeys)("table %s declares every key attribute and names what each index serves", (key) => {
    const table: TableDefinition = tables[key];
    const keyAttributes = [
      table.partitionKey,
      table.sortKey,
      ...Object.values(table.indexes).flatMap((index) => [index.partitionKey, index.sortKey]),
    ].filter((name): name is string => name !== undefined);
    for (const attribute of keyAttributes) expect(Object.keys(table.fields)).toContain(attribute);
    // DynamoDB refuses attribute definitions that no key uses.
    for (const field of Object.keys(table.fields)) expect(keyAttributes).toContain(field);
    for (const [name, index] of Object.entries(table.indexes)) {
      expect(name).toMatch(/^by[A-Z]/);
      expect(index.serves.length).toBeGreaterThan(10);
    }
  });

  it.each(Object.entries(rules))("rule %s has a valid pattern, a function with known tables and a handler module", async (name, rule) => {
    expect(() => validatePattern(rule.pattern)).not.toThrow();
    const definition = functions[name as keyof typeof functions];
    expect(definition.handler).toBe(rule.handler);
    for (const table of Object.keys(definition.tables)) expect(tableKeys).toContain(table);
    const file = join(root, "functions", "src", rule.handler);
    expect(existsSync(file)).toBe(true);
    const module = (await import(file)) as { handler?: unknown };
    expect(typeof module.handler).toBe("function");
  });
});

describe("tables created from the definition in DynamoDB Local", () => {
  let runtime: TestRuntime;
  beforeAll(async () => {
    runtime = await startTestRuntime();
  });
  afterAll(() => runtime.stop());

  it.each(tableKeys)("table %s has the keys and indexes the definition names", async (key) => {
    const table: TableDefinition = tables[key];
    const { Table } = await runtime.ports.db.send(new DescribeTableCommand({ TableName: runtime.ports.tables[key] }));
    const keys = (schema: { AttributeName?: string; KeyType?: string }[] | undefined) =>
      (schema ?? []).map((element) => `${element.KeyType}:${element.AttributeName}`);
    expect(keys(Table?.KeySchema)).toEqual([`HASH:${table.partitionKey}`, ...(table.sortKey ? [`RANGE:${table.sortKey}`] : [])]);
    const indexes = Object.fromEntries((Table?.GlobalSecondaryIndexes ?? []).map((index) => [index.IndexName, keys(index.KeySchema)]));
    expect(indexes).toEqual(
      Object.fromEntries(
        Object.entries(table.indexes).map(([name, index]) => [
          name,
          [`HASH:${index.partitionKey}`, ...(index.sortKey ? [`RANGE:${index.sortKey}`] : [])],
        ]),
      ),
    );
  });
});
