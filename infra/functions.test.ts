/**
 * Every function, built the way SST builds it (scripts/bundle/build.ts), against what the
 * platform definition says about it: the size budget, and least privilege (the IAM actions
 * its SDK commands need are exactly the ones infra grants it).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { functionNames, functions, grantsOf, type FunctionName } from "../packages/core/src/platform/functions.ts";
import { bundling } from "../packages/core/src/platform/limits.ts";
import { bundleFunction, type Bundle } from "../scripts/bundle/build.ts";
import { actionsNeeded } from "../scripts/bundle/sdk-actions.ts";
import { integrationPermissions } from "../packages/core/src/platform/integrations.ts";

const bundles = new Map<FunctionName, Bundle>();
beforeAll(async () => {
  for (const name of functionNames) bundles.set(name, await bundleFunction(name));
}, 120_000);

/** The function's grants from the platform definition, and the integration's own (infra/integrations.ts attaches those). */
const integrationActions = (name: FunctionName): string[] =>
  ((integrationPermissions as Record<string, readonly { actions: readonly string[] }[]>)[name] ?? []).flatMap((statement) => [
    ...statement.actions,
  ]);
const granted = (name: FunctionName) =>
  [...new Set([...grantsOf(functions[name]).flatMap((grant) => grant.actions), ...integrationActions(name)])].sort();

describe.each(functionNames)("function %s", (name) => {
  it("is granted every IAM action its code's SDK commands need, and no other", () => {
    const needed = actionsNeeded(bundles.get(name)!.code);
    const grants = granted(name);
    expect({ missing: needed.filter((action) => !grants.includes(action)) }).toEqual({ missing: [] });
    expect({ unused: grants.filter((action) => !needed.includes(action)) }).toEqual({ unused: [] });
  });

  it("has no wildcard action and no table management action", () => {
    for (const action of granted(name)) {
      expect(action).not.toContain("*");
      expect(action).not.toMatch(/^dynamodb:(CreateTable|DeleteTable|UpdateTable|Scan)$/);
    }
  });

  it(`stays within the bundle budget (${bundling.budgetBytes / 1024} KB minified, AWS SDK from the runtime)`, () => {
    const bytes = bundles.get(name)!.bytes;
    const exception = bundling.overBudget[name];
    if (exception === undefined) {
      expect(bytes).toBeLessThanOrEqual(bundling.budgetBytes);
    } else {
      expect(bytes, `${name} grew past its ceiling`).toBeLessThanOrEqual(exception.ceilingBytes);
      expect(bytes, `${name} is back under budget: remove it from bundling.overBudget`).toBeGreaterThan(bundling.budgetBytes);
    }
  });

  it("bundles no AWS SDK code (the Lambda runtime provides it)", () => {
    expect(bundles.get(name)!.inputs.filter((input) => /node_modules\/@(aws-sdk|smithy)\//.test(input.path))).toEqual([]);
  });
});

describe("the permission check itself", () => {
  it("finds a command that a bundle sends but the grants lack", () => {
    const code = `import{GetCommand as a,ScanCommand as b}from"@aws-sdk/lib-dynamodb";import{SignCommand as c}from"@aws-sdk/client-kms";`;
    expect(actionsNeeded(code)).toEqual(["dynamodb:GetItem", "dynamodb:Scan", "kms:Sign"]);
  });

  it("derives a transaction's actions from the item kinds the code builds", () => {
    const code = `import{TransactWriteCommand as t}from"@aws-sdk/lib-dynamodb";const x={ConditionCheck:{TableName:n}},y=[{Put:i}];`;
    expect(actionsNeeded(code)).toEqual(["dynamodb:ConditionCheckItem", "dynamodb:PutItem"]);
  });

  it("refuses a command it cannot map rather than passing it", () => {
    expect(() => actionsNeeded(`import{ExecuteStatementCommand as e}from"@aws-sdk/client-dynamodb";`)).toThrow(/ExecuteStatementCommand/);
  });
});
