/**
 * Bench fixture: a tenant of `size` devices written straight into the identity table in
 * batches (the API would take minutes per 100k on DynamoDB Local; what the feed reads is the
 * same items either way), plus one IP binding per device.
 */
import { BatchWriteCommand } from "@aws-sdk/lib-dynamodb";
import { deviceItem, newId, type Device, type Ports } from "@simroot/core";
import { bindingKey } from "@simroot/core/device/keys";

export async function seedFleet(ports: Ports, tenantId: string, size: number): Promise<Device[]> {
  const now = new Date().toISOString();
  const devices: Device[] = [];
  const items: Record<string, unknown>[] = [];
  for (let n = 0; n < size; n++) {
    const device: Device = {
      id: newId("device"),
      tenantId,
      state: "active",
      imsi: `20801${String(n).padStart(10, "0")}`,
      iccids: [],
      labels: { fleet: `segment-${n % 50}`, site: `site-${n % 7}` },
      identity: { state: "active", stateAt: now, sessions: {}, profiles: {} },
      createdAt: now,
      updatedAt: now,
      revision: 1,
    };
    devices.push(device);
    items.push(deviceItem(device, { checkpoint: device.identity, facts: [] }));
    const address = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
    items.push({
      ...bindingKey(tenantId, address),
      deviceId: device.id,
      address,
      bearer: "cellular",
      apn: "iot",
      since: now,
    });
  }
  let next = 0;
  const batches = Math.ceil(items.length / 25);
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let batch = next++; batch < batches; batch = next++) {
        let pending = items.slice(batch * 25, batch * 25 + 25).map((Item) => ({ PutRequest: { Item } }));
        while (pending.length > 0) {
          const result = await ports.db.send(new BatchWriteCommand({ RequestItems: { [ports.tables.identity]: pending } }));
          pending = (result.UnprocessedItems?.[ports.tables.identity] ?? []) as typeof pending;
        }
      }
    }),
  );
  return devices;
}
