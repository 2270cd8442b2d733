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
  /**
   * Items no other device may hold, each with the identifier it stands for: the other spelling of each ICCID (with or
   * without its check digit names the same SIM), and the mark of an eUICC whose profiles were reported on a device
   * registered without its EID (review 119).
   */
  const unheld = [
    ...device.iccids.flatMap((value) => {
      const other = iccidOtherSpelling(value);
      return other === undefined ? [] : [{ key: aliasKey(ctx.tenantId, "iccid", other), kind: "iccid" as const, value: other }];
    }),
    ...(device.eid ? [{ key: euiccKey(ctx.tenantId, device.eid), kind: "eid" as const, value: device.eid }] : []),
  ];
  /** What each write after the device's own stands for, in the order of the writes. */
  const checked = [...identifiers, ...unheld];
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
      ...unheld.map(({ key }) => ({
        ConditionCheck: { TableName: ports.tables.identity, Key: key, ConditionExpression: "attribute_not_exists(pk)" },
      })),
    ],
    onConditionFailed: (index) => {
      const taken = checked[index - 1];
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
