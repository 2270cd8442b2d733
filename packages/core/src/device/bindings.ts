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
  // Where bindings are kept now; for what is not there, where they were kept before; for what is at neither, the new
  // place again (a move, one transaction, may have committed between the first two reads).
  const passes = [
    { keyOf: bindingKey, legacy: false },
    { keyOf: legacyBindingKey, legacy: true },
    { keyOf: bindingKey, legacy: false },
  ];
  for (const { keyOf, legacy } of passes) {
    const missing = addresses.filter((address) => !found.has(address));
    if (missing.length === 0) break;
    const keys = missing.map((address) => keyOf(tenantId, address));
    const byKey = new Map((await batchGetAll(ports, table, keys)).map((item) => [itemKeyText(item), item]));
    missing.forEach((address, index) => {
      const item = byKey.get(itemKeyText(keys[index]!));
      if (item) found.set(address, { item, legacy });
    });
  }
  return found;
}
