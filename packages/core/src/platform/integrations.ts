/**
 * The AWS permissions each integration's function needs beyond its tables (which infra
 * links from `rules`), declared once: `infra/integrations.ts` attaches them and the README
 * lists them. IoT resources are scoped to simroot's own names (`<prefix>*` groups, thing
 * type and policies, `simroot-` unless `SIMROOT_IOT_PREFIX` says) where IAM allows it; things and certificates are the
 * fleet's own.
 */
export interface PermissionStatement {
  readonly actions: readonly string[];
  readonly resources: readonly string[];
}

const iotArn = (kind: string, name: string) => `arn:aws:iot:*:*:${kind}/${name}`;

/** The permissions with simroot's IoT resources named by `prefix` (config.ts `iotPrefix`, which checks it). */
export const integrationPermissionsFor = (prefix: string) =>
  ({
    iotSync: [
      {
        actions: ["iot:DescribeThing", "iot:CreateThing", "iot:UpdateThing", "iot:ListThingGroupsForThing", "iot:ListThingPrincipals"],
        resources: [iotArn("thing", "*"), iotArn("thingtype", `${prefix}*`)],
      },
      {
        actions: [
          "iot:UpdateThingGroupsForThing",
          "iot:AddThingToThingGroup",
          "iot:RemoveThingFromThingGroup",
          "iot:CreateThingGroup",
          "iot:DescribeThingGroup",
        ],
        resources: [iotArn("thing", "*"), iotArn("thinggroup", `${prefix}*`)],
      },
      { actions: ["iot:CreateThingType"], resources: [iotArn("thingtype", `${prefix}*`)] },
      { actions: ["iot:CreatePolicy"], resources: [iotArn("policy", `${prefix}*`)] },
      // Attach the state groups' deny policies; revoke certificates and detach whatever policies they carry.
      { actions: ["iot:AttachPolicy"], resources: [iotArn("thinggroup", `${prefix}*`)] },
      { actions: ["iot:UpdateCertificate", "iot:ListAttachedPolicies", "iot:DetachPolicy"], resources: [iotArn("cert", "*")] },
    ],
    // Outbound HTTPS only (Tailscale's API, the SIEM's collector): no AWS action.
    postureSync: [],
    siemExport: [],
  }) as const satisfies Record<string, readonly PermissionStatement[]>;

/** With the default prefix (`simroot-`): the actions each function is granted, whatever the prefix. */
export const integrationPermissions = integrationPermissionsFor("simroot-");
