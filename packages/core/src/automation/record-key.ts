/** The kinds of records the automation table holds per tenant, and their keys (one partition per kind). */
export type RecordKind = "rule" | "webhook" | "incident";

export const recordKey = (tenantId: string, kind: RecordKind, id: string) => ({ pk: `T#${tenantId}#${kind}`, sk: id });
