/**
 * The names of simroot's tables, apart from their definition (platform/tables.ts), which every function would otherwise
 * carry for its descriptions alone (about 2 KB of each bundle): `config.ts` needs only the names.
 */
export const tableKeys = ["identity", "control", "audit", "flows", "automation"] as const;
export type TableKey = (typeof tableKeys)[number];
