/**
 * Spreading a tenant's many items of one kind over several partitions (one partition takes at most 1,000 write units
 * a second): the identity index's listings (device/keys.ts) and the automation's firings (automation/run.ts).
 */
export const listStripes = 16;

/** FNV-1a (32 bits) of the key, modulo `listStripes`: cheap, stable, spread evenly over ids and addresses. */
export function listStripe(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % listStripes;
}
