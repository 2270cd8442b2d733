/**
 * Which IAM actions a bundle's code can need: the AWS SDK commands it imports (the SDK is
 * external, so every command stays a named import from `@aws-sdk/*`, or a name destructured from
 * an `await import("@aws-sdk/...")` where a client is loaded on first use), each mapped to the
 * action IAM checks for it. A transaction's actions are those of the item kinds its code builds.
 */
import { dynamodbCommandActions, transactWriteItemActions } from "../../packages/core/src/platform/dynamodb-actions.ts";

const byCommand: Readonly<Record<string, readonly string[]>> = {
  ...Object.fromEntries(Object.entries(dynamodbCommandActions).map(([command, action]) => [command, [`dynamodb:${action}`]])),
  PutEventsCommand: ["events:PutEvents"],
  SignCommand: ["kms:Sign"],
  GetPublicKeyCommand: ["kms:GetPublicKey"],
  EncryptCommand: ["kms:Encrypt"],
  DecryptCommand: ["kms:Decrypt"],
  ReceiveMessageCommand: ["sqs:ReceiveMessage"],
  DeleteMessageCommand: ["sqs:DeleteMessage"],
  GetQueueAttributesCommand: ["sqs:GetQueueAttributes"],
  SendMessageCommand: ["sqs:SendMessage"],
  InvokeCommand: ["lambda:InvokeFunction"],
  PutObjectCommand: ["s3:PutObject"],
  // AWS IoT: the feed's push channel (data plane) and the IoT Core integration (control plane).
  PublishCommand: ["iot:Publish"],
  DescribeThingCommand: ["iot:DescribeThing"],
  CreateThingCommand: ["iot:CreateThing"],
  UpdateThingCommand: ["iot:UpdateThing"],
  ListThingGroupsForThingCommand: ["iot:ListThingGroupsForThing"],
  ListThingPrincipalsCommand: ["iot:ListThingPrincipals"],
  UpdateThingGroupsForThingCommand: ["iot:UpdateThingGroupsForThing"],
  AddThingToThingGroupCommand: ["iot:AddThingToThingGroup"],
  RemoveThingFromThingGroupCommand: ["iot:RemoveThingFromThingGroup"],
  CreateThingGroupCommand: ["iot:CreateThingGroup"],
  DescribeThingGroupCommand: ["iot:DescribeThingGroup"],
  CreateThingTypeCommand: ["iot:CreateThingType"],
  CreatePolicyCommand: ["iot:CreatePolicy"],
  AttachPolicyCommand: ["iot:AttachPolicy"],
  UpdateCertificateCommand: ["iot:UpdateCertificate"],
  ListAttachedPoliciesCommand: ["iot:ListAttachedPolicies"],
  DetachPolicyCommand: ["iot:DetachPolicy"],
};

const transactItems = Object.fromEntries(Object.entries(transactWriteItemActions).map(([kind, action]) => [kind, `dynamodb:${action}`]));

/** The AWS SDK packages a bundle imports at module scope, and those it imports on first use. */
export function sdkPackages(code: string): { atInit: string[]; onUse: string[] } {
  const packages = (pattern: RegExp) => [...new Set([...code.matchAll(pattern)].map((match) => match[1]!))].sort();
  return {
    atInit: packages(/(?:^|[;\n}])\s*import\s*(?:[\w$*{][^;]*?from\s*)?["'](@aws-sdk\/[^"']+)["']/g),
    onUse: packages(/import\(\s*["'](@aws-sdk\/[^"']+)["']\s*\)/g),
  };
}

/**
 * The names a bundle imports from the AWS SDK packages: named imports, and the names destructured from a dynamic
 * import. Throws on a dynamic import that is not destructured where it is made: its commands could not be read.
 */
export function sdkImports(code: string): string[] {
  const names = new Set<string>();
  const add = (list: string, separator: RegExp) => {
    for (const part of list.split(",")) {
      const name = part.trim().split(separator)[0]!.trim();
      if (name) names.add(name);
    }
  };
  for (const match of code.matchAll(/import\s*\{([^}]*)\}\s*from\s*["'](@aws-sdk\/[^"']+)["']/g)) add(match[1]!, /\s+as\s+/);
  const dynamic = [...code.matchAll(/import\(\s*["']@aws-sdk\/[^"']+["']\s*\)/g)].length;
  const destructured = [...code.matchAll(/\{([^{}]*)\}\s*=\s*await\s*import\(\s*["']@aws-sdk\/[^"']+["']\s*\)/g)];
  if (destructured.length !== dynamic) {
    throw new Error(
      `${dynamic - destructured.length} of ${dynamic} dynamic AWS SDK imports are not destructured where they are made ` +
        "(`const { XClient, YCommand } = await import(...)`): their commands, and so the permissions, cannot be read",
    );
  }
  for (const match of destructured) add(match[1]!, /\s*:\s*/);
  return [...names].sort();
}

/** The IAM actions the bundle's SDK commands need; throws on a command this map does not know. */
export function actionsNeeded(code: string): string[] {
  const actions = new Set<string>();
  for (const name of sdkImports(code).filter((imported) => imported.endsWith("Command"))) {
    if (name === "TransactWriteCommand" || name === "TransactWriteItemsCommand") {
      for (const [key, action] of Object.entries(transactItems)) {
        if (new RegExp(`[{,]${key}:`).test(code)) actions.add(action);
      }
      continue;
    }
    const mapped = byCommand[name];
    if (!mapped) throw new Error(`No IAM action known for SDK command ${name}: add it to scripts/bundle/sdk-actions.ts`);
    for (const action of mapped) actions.add(action);
  }
  return [...actions].sort();
}
