/**
 * Sending OCSF to a tenant's SIEM: what the SIEM consumer does with each published event. Apart from the audit and flow
 * export (ocsf-export.ts, which queries the store), so that the consumer's bundle holds no DynamoDB command and its
 * role no table grant (core platform/functions.ts `siemExport`).
 */
import { SimrootError } from "../../error.ts";
import type { DomainEvent } from "../../event/event.ts";
import { ocsfFromEvent, type OcsfEvent } from "./ocsf-map.ts";

export interface SiemSettings {
  readonly tenantId: string;
  readonly url: string;
  readonly token?: string;
}

/** POSTs OCSF events as JSON Lines to the SIEM's HTTPS collector; any answer but 2xx fails (and the bus retries). */
export async function sendToSiem(settings: SiemSettings, events: readonly OcsfEvent[]): Promise<void> {
  if (events.length === 0) return;
  const response = await fetch(settings.url, {
    method: "POST",
    headers: { "content-type": "application/x-ndjson", ...(settings.token ? { authorization: `Bearer ${settings.token}` } : {}) },
    body: `${events.map((event) => JSON.stringify(event)).join("\n")}\n`,
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) {
    throw new SimrootError("integration.siem_failed", "unavailable", `The SIEM collector answered ${response.status}`, {
      detail: { status: response.status },
    });
  }
}

/** The consumer's verb: one published simroot event, to the SIEM of its tenant. */
export async function exportEventToSiem(settings: SiemSettings, event: DomainEvent): Promise<boolean> {
  if (event.tenantId !== settings.tenantId) return false;
  await sendToSiem(settings, [ocsfFromEvent(event)]);
  return true;
}
