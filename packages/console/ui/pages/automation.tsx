import { all } from "../api.ts";
import { useLiveData } from "../live-state.ts";
import type { AutomationRule, Webhook } from "../model.ts";
import { DataTable } from "../table.tsx";

/** What a subscription or rule is doing: running, or why not (a stored pattern refused now: review 90). */
const statusOf = (item: { enabled?: boolean; problem?: string; disabledReason?: string; dryRun?: boolean }) =>
  item.problem ??
  (item.enabled !== false ? (item.dryRun ? "Dry run" : "Enabled") : `Disabled${item.disabledReason ? `: ${item.disabledReason}` : ""}`);

/**
 * The tenant's webhook subscriptions and automation rules, each with its role: the role of the key that made or last
 * changed it, whose reads decide what a subscription is sent and what a rule fires on (reviews 87 and 90).
 */
export function AutomationPage() {
  const webhooks = useLiveData(() => all<Webhook>("/v1/webhooks", 500), []);
  const rules = useLiveData(() => all<AutomationRule>("/v1/automation/rules", 500), []);
  const error = webhooks.error ?? rules.error;
  return (
    <section aria-labelledby="automation-title">
      <h1 id="automation-title">Webhooks and rules</h1>
      {error && (
        <p role="alert" class="error">
          {error.message}
        </p>
      )}
      <p class="hint">
        Each is sent, or fires on, only the events its role reads: an operator's, none of keys, sources, tenant creation or the feed epoch.
        Its role is that of the key that made or last changed it.
      </p>
      <DataTable caption={"Webhook subscriptions"} columns={["URL", "Role", "Pattern", "Status"]}>
        {(webhooks.data ?? []).map((w) => (
          <tr>
            <th scope="row">{w.url}</th>
            <td>{w.role}</td>
            <td>
              <code>{JSON.stringify(w.pattern)}</code>
            </td>
            <td class={w.problem || !w.enabled ? "warn" : ""}>{statusOf(w)}</td>
          </tr>
        ))}
      </DataTable>
      <DataTable caption={"Automation rules"} columns={["Name", "Role", "Pattern", "Actions", "Status"]}>
        {(rules.data ?? []).map((r) => (
          <tr>
            <th scope="row">{r.name}</th>
            <td>{r.role}</td>
            <td>
              <code>{JSON.stringify(r.pattern)}</code>
            </td>
            <td>{r.actions.map((a) => a.type).join(", ")}</td>
            <td class={r.problem || r.enabled === false ? "warn" : ""}>{statusOf(r)}</td>
          </tr>
        ))}
      </DataTable>
    </section>
  );
}
