import { domainEvent } from "../event/event.ts";
import { SimrootError } from "../error.ts";
import { newId } from "../id.ts";
import type { Outcome } from "../outcome.ts";
import { verb } from "../verb.ts";
import { deviceIdentifiers, enforcementView, registerDeviceInput, type Device } from "./device.ts";
import { spkiFingerprint } from "./credential.ts";
import { aliasKey, euiccKey } from "./keys.ts";
import { iccidOtherSpelling } from "./identifiers.ts";
import { deviceItem } from "./store.ts";

/**
 * Registers a device under its SIM identity. The device, one alias per identifier (which
 * keeps every identifier unique in the tenant) and the audit record commit in one transaction.
 */
export const registerDevice = verb(registerDeviceInput, async (ports, ctx, input): Promise<Outcome<Device>> => {
  const now = ports.now();
  const device: Device = {
    id: newId("device", now.getTime()),
    tenantId: ctx.tenantId,
    name: input.name,
    state: "active",
    eid: input.eid,
    iccids: input.iccids ?? [],
    imsi: input.imsi,
    imei: input.imei,
    msisdn: input.msisdn,
    ...(input.externalId ? { externalId: input.externalId } : {}),
    labels: input.labels ?? {},
    imeiLock: input.imeiLock,
    ...(input.allowedCountries ? { allowedCountries: input.allowedCountries } : {}),
    credentialFingerprint: input.credential ? spkiFingerprint(input.credential) : undefined,
    identity: { state: "active", stateAt: now.toISOString(), imei: input.imei, sessions: {}, profiles: {} },
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    revision: 1,
  };
  const identifiers = deviceIdentifiers(device);
  // The other spelling of each ICCID (with or without its check digit) names the same SIM: not another device's either.
  const spellings = device.iccids.flatMap((iccid) => {
    const other = iccidOtherSpelling(iccid);
    return other === undefined ? [] : [other];
  });
  const event = domainEvent(ctx, "device.registered", device.id, { device }, now);
  await ports.ledger.commit({
    tenantId: ctx.tenantId,
    events: [event],
    feed: [{ kind: "device", key: device.id, value: enforcementView(device) }],
    writes: [
      {
        Put: {
          TableName: ports.tables.identity,
          Item: deviceItem(device, { checkpoint: device.identity, facts: [] }),
          ConditionExpression: "attribute_not_exists(pk)",
        },
      },
      ...identifiers.map(({ kind, value }) => ({
        Put: {
          TableName: ports.tables.identity,
          Item: { ...aliasKey(ctx.tenantId, kind, value), deviceId: device.id, kind, value },
          ConditionExpression: "attribute_not_exists(pk)",
        },
      })),
      ...spellings.map((value) => ({
        ConditionCheck: {
          TableName: ports.tables.identity,
          Key: aliasKey(ctx.tenantId, "iccid", value),
          ConditionExpression: "attribute_not_exists(pk)",
        },
      })),
      // An eUICC whose profiles were reported on a device registered without its EID is that device's (review 119).
      ...(device.eid
        ? [
            {
              ConditionCheck: {
                TableName: ports.tables.identity,
                Key: euiccKey(ctx.tenantId, device.eid),
                ConditionExpression: "attribute_not_exists(pk)",
              },
            },
          ]
        : []),
    ],
    onConditionFailed: (index) => {
      const at = index - 1 - identifiers.length;
      const spelled = spellings[at];
      const taken =
        identifiers[index - 1] ??
        (spelled !== undefined
          ? { kind: "iccid" as const, value: spelled }
          : at === spellings.length && device.eid
            ? { kind: "eid" as const, value: device.eid }
            : undefined);
      if (!taken) return undefined;
      return new SimrootError("device.identifier_taken", "conflict", `${taken.kind} ${taken.value} already belongs to a device`, {
        issues: [
          {
            path: ({ iccid: "iccids", credential: "credential" } as Record<string, string>)[taken.kind] ?? taken.kind,
            message: "already registered to another device",
          },
        ],
      });
    },
  });
  return { value: device, events: [event] };
});
