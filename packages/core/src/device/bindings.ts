/**
 * Reading IP binding items by address, wherever each is kept (device/keys.ts): where bindings are kept now, or, for an
 * address not written since 2026-12-03, where they were kept before. Consistent reads.
 */
import type { Ports } from "../ports.ts";
import { batchGetAll, itemKeyText } from "../store/batch-get.ts";
import { bindingKey, legacyBindingKey } from "./keys.ts";

export interface StoredBindingItem {
  readonly item: Record<string, unknown>;
  /** Kept where bindings were kept before (`legacyBindingKey`): its next write moves it. */
  readonly legacy: boolean;
}

/**
 * The binding items of `addresses` (those the store has: a tombstone included). The former place is read only for the
 * addresses the present one has nothing for: an address bound or released since is read once.
 */
export async function readBindings(
  ports: Pick<Ports, "db">,
  table: string,
  tenantId: string,
  addresses: readonly string[],
): Promise<Map<string, StoredBindingItem>> {
  const found = new Map<string, StoredBindingItem>();
  if (addresses.length === 0) return found;
  const current = await batchGetAll(
    ports,
    table,
    addresses.map((address) => bindingKey(tenantId, address)),
  );
  const byKey = new Map(current.map((item) => [itemKeyText(item), item]));
  for (const address of addresses) {
    const item = byKey.get(itemKeyText(bindingKey(tenantId, address)));
    if (item) found.set(address, { item, legacy: false });
  }
  const missing = addresses.filter((address) => !found.has(address));
  if (missing.length === 0) return found;
  const former = await batchGetAll(
    ports,
    table,
    missing.map((address) => legacyBindingKey(tenantId, address)),
  );
  const formerByKey = new Map(former.map((item) => [itemKeyText(item), item]));
  for (const address of missing) {
    const item = formerByKey.get(itemKeyText(legacyBindingKey(tenantId, address)));
    if (item) found.set(address, { item, legacy: true });
  }
  // Nothing at either key: a move (one transaction) may have committed between the two reads. Read the new key again.
  const nowhere = missing.filter((address) => !found.has(address));
  if (nowhere.length === 0) return found;
  const again = new Map(
    (
      await batchGetAll(
        ports,
        table,
        nowhere.map((address) => bindingKey(tenantId, address)),
      )
    ).map((item) => [itemKeyText(item), item]),
  );
  for (const address of nowhere) {
    const item = again.get(itemKeyText(bindingKey(tenantId, address)));
    if (item) found.set(address, { item, legacy: false });
  }
  return found;
}
