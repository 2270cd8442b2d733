/**
 * The IoT port over `@aws-sdk/client-iot` (the control-plane REST API). `batch` moves a
 * thing between groups with one UpdateThingGroupsForThing call; without it (the baseline
 * the bench compares with) each membership change is its own Add/Remove call.
 */
import {
  AddThingToThingGroupCommand,
  AttachPolicyCommand,
  CreatePolicyCommand,
  CreateThingCommand,
  CreateThingGroupCommand,
  CreateThingTypeCommand,
  DescribeThingCommand,
  type DescribeThingCommandOutput,
  DescribeThingGroupCommand,
  DetachPolicyCommand,
  IoTClient,
  ListAttachedPoliciesCommand,
  ListThingGroupsForThingCommand,
  ListThingPrincipalsCommand,
  RemoveThingFromThingGroupCommand,
  UpdateCertificateCommand,
  UpdateThingCommand,
  UpdateThingGroupsForThingCommand,
} from "@aws-sdk/client-iot";
import { IotMissingResource, IotThingChanged, type IotControl } from "./iot-port.ts";

const named = (error: unknown, ...names: string[]) => error instanceof Error && names.includes(error.name);

async function orMissing<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (named(error, "ResourceNotFoundException")) throw new IotMissingResource(String((error as Error).message), { cause: error });
    throw error;
  }
}

/** A write on condition of the thing as read: refused when another run wrote it since. */
async function asRead<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (named(error, "VersionConflictException", "ResourceAlreadyExistsException"))
      throw new IotThingChanged(String((error as Error).message), { cause: error });
    throw error;
  }
}

async function unlessExists(run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (!named(error, "ResourceAlreadyExistsException")) throw error;
  }
}

/** Every page of a listing that pages with `nextToken` or `nextMarker`. */
async function allPages<T>(page: (token: string | undefined) => Promise<{ items: T[]; next: string | undefined }>): Promise<T[]> {
  const items: T[] = [];
  let token: string | undefined;
  do {
    const result = await page(token);
    items.push(...result.items);
    token = result.next;
  } while (token);
  return items;
}

export function sdkIotControl(client = new IoTClient({}), options: { batch?: boolean } = {}): IotControl {
  const batch = options.batch ?? true;
  return {
    async getThing(name) {
      let described: DescribeThingCommandOutput;
      try {
        described = await client.send(new DescribeThingCommand({ thingName: name }));
      } catch (error) {
        if (named(error, "ResourceNotFoundException")) return undefined;
        throw error;
      }
      const groups = await allPages(async (nextToken) => {
        const page = await client.send(new ListThingGroupsForThingCommand({ thingName: name, nextToken }));
        return { items: (page.thingGroups ?? []).map((group) => group.groupName!), next: page.nextToken };
      });
      return {
        name,
        attributes: described.attributes ?? {},
        version: Number(described.version ?? 0),
        thingTypeName: described.thingTypeName,
        groups,
      };
    },
    createThing: (name, thingTypeName, attributes) =>
      asRead(() =>
        orMissing(() => client.send(new CreateThingCommand({ thingName: name, thingTypeName, attributePayload: { attributes } }))),
      ).then(() => {}),
    updateThing: (name, thingTypeName, attributes, version) =>
      asRead(() =>
        orMissing(() =>
          client.send(
            new UpdateThingCommand({
              thingName: name,
              thingTypeName,
              attributePayload: { attributes, merge: false },
              expectedVersion: version,
            }),
          ),
        ),
      ).then(() => {}),
    async moveThing(name, add, remove) {
      if (batch) {
        await orMissing(() =>
          client.send(
            new UpdateThingGroupsForThingCommand({ thingName: name, thingGroupsToAdd: [...add], thingGroupsToRemove: [...remove] }),
          ),
        );
        return;
      }
      for (const group of add)
        await orMissing(() => client.send(new AddThingToThingGroupCommand({ thingName: name, thingGroupName: group })));
      for (const group of remove)
        await orMissing(() => client.send(new RemoveThingFromThingGroupCommand({ thingName: name, thingGroupName: group })));
    },
    async ensureGroup(spec) {
      let arn: string | undefined;
      try {
        arn = (await client.send(new CreateThingGroupCommand({ thingGroupName: spec.name }))).thingGroupArn;
      } catch (error) {
        if (!named(error, "ResourceAlreadyExistsException")) throw error;
        arn = (await client.send(new DescribeThingGroupCommand({ thingGroupName: spec.name }))).thingGroupArn;
      }
      if (!spec.policy) return;
      const policy = spec.policy;
      await unlessExists(() => client.send(new CreatePolicyCommand({ policyName: policy.name, policyDocument: policy.document })));
      await client.send(new AttachPolicyCommand({ policyName: policy.name, target: arn }));
    },
    ensureThingType: (name) => unlessExists(() => client.send(new CreateThingTypeCommand({ thingTypeName: name }))),
    async listCertificates(thing) {
      const principals = await allPages(async (nextToken) => {
        const page = await client.send(new ListThingPrincipalsCommand({ thingName: thing, nextToken }));
        return { items: page.principals ?? [], next: page.nextToken };
      });
      return principals.filter((arn) => arn.includes(":cert/"));
    },
    async revokeCertificate(certificateArn) {
      const certificateId = certificateArn.slice(certificateArn.lastIndexOf("/") + 1);
      let revoked = true;
      try {
        await client.send(new UpdateCertificateCommand({ certificateId, newStatus: "REVOKED" }));
      } catch (error) {
        // A certificate already REVOKED cannot change state: nothing left to do for it.
        if (!named(error, "CertificateStateException")) throw error;
        revoked = false;
      }
      const policies = await allPages(async (marker) => {
        const page = await client.send(new ListAttachedPoliciesCommand({ target: certificateArn, marker }));
        return { items: (page.policies ?? []).map((policy) => policy.policyName!), next: page.nextMarker };
      });
      for (const policyName of policies) await client.send(new DetachPolicyCommand({ policyName, target: certificateArn }));
      return { revoked, detached: policies };
    },
  };
}
