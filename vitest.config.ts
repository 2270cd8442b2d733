import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "functions/src/**/*.test.ts", "test/**/*.test.ts", "infra/**/*.test.ts"],
    // One in-memory DynamoDB Local for the whole run; each test file gets its own tables.
    globalSetup: ["test/support/global-setup.ts"],
    // ... in which each file has its own database.
    setupFiles: ["test/support/dynamo-key.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
