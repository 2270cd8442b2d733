import { useState } from "preact/hooks";
import { ActionFailure, useAction } from "../action.tsx";
import { all, api, ApiError, request } from "../api.ts";
import { DataTable } from "../table.tsx";
import { useLiveData } from "../live-state.ts";
import { when, type ChangedFlow, type Policy, type PolicyPreview } from "../model.ts";

interface Grant {
  id: string;
  principal: string;
  target: unknown;
  notBefore: string;
  notAfter: string;
  revokedAt?: string;
}
type Preview = PolicyPreview;

const template = {
  name: "Meters send telemetry",
  selector: { matchLabels: { fleet: "meters" } },
  destinations: [{ fqdn: "ingest.example.com", ports: [8883], protocol: "tcp" }],
  effect: "allow",
};

const editable = ({ id: _id, revision: _r, updatedAt: _u, createdAt: _c, ...rule }: Policy & { createdAt?: string }) => rule;

function Problem({ error }: { error: unknown }) {
  if (!(error instanceof ApiError))
    return (
      <p role="alert" class="error">
        {String(error)}
      </p>
    );
  return (
    <div role="alert" class="error">
      <p>{error.message}</p>
      {error.problem.errors && (
        <ul>
          {error.problem.errors.map((e) => (
            <li>
              <code>{e.path}</code>: {e.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function FlowList({ title, flows }: { title: string; flows: ChangedFlow[] }) {
  return (
    <>
      <h3>
        {title} ({flows.length})
      </h3>
      {flows.length > 0 && (
        <ul>
          {flows.map((f) => (
            <li>
              <a href={`#/devices/${encodeURIComponent(f.deviceId)}`}>{f.deviceId}</a> → {f.destination}:{f.port}/{f.protocol} ×
              {f.connections}: {f.before.reason} → {f.after.reason}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

function Editor({ policy, onSaved, onCancel }: { policy?: Policy; onSaved: () => void; onCancel: () => void }) {
  const [text, setText] = useState(JSON.stringify(policy ? editable(policy) : template, null, 2));
  const [preview, setPreview] = useState<Preview>();
  const [error, setError] = useState<unknown>();
  const parsed = (): Record<string, unknown> | undefined => {
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      setError(new ApiError(400, { detail: `Not JSON: ${(e as Error).message}` }));
      return undefined;
    }
  };
  const runPreview = async (remove = false) => {
    setError(undefined);
    setPreview(undefined);
    const rule = remove ? undefined : parsed();
    if (!remove && !rule) return;
    try {
      const body = remove ? { remove: policy!.id } : { upsert: { ...rule, id: policy?.id ?? "new-rule" } };
      setPreview(await api<Preview>("POST", "/v1/policies/preview", body));
    } catch (e) {
      setError(e);
    }
  };
  const save = async () => {
    setError(undefined);
    const rule = parsed();
    if (!rule) return;
    try {
      if (policy) await api("PUT", `/v1/policies/${encodeURIComponent(policy.id)}`, rule, { "if-match": `"${policy.revision}"` });
      else await api("POST", "/v1/policies", rule);
      onSaved();
    } catch (e) {
      setError(e);
    }
  };
  const remove = async () => {
    if (!policy || !confirm(`Delete the rule "${policy.name}"?`)) return;
    try {
      await request("DELETE", `/v1/policies/${encodeURIComponent(policy.id)}`, undefined, { "if-match": `"${policy.revision}"` });
      onSaved();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <form
      class="editor"
      aria-labelledby="editor-title"
      onSubmit={(e) => {
        e.preventDefault();
        void runPreview();
      }}
    >
      <h2 id="editor-title">{policy ? `Edit ${policy.name}` : "New rule"}</h2>
      <label for="rule-json">Rule (JSON: name, selector, destinations, conditions, effect)</label>
      <textarea id="rule-json" rows={14} value={text} onInput={(e) => setText(e.currentTarget.value)} spellcheck={false} />
      <div class="buttons">
        <button type="submit">Preview</button>
        <button type="button" onClick={() => void save()}>
          Save
        </button>
        {policy && (
          <>
            <button type="button" class="quiet" onClick={() => void runPreview(true)}>
              Preview removal
            </button>
            <button type="button" class="danger" onClick={() => void remove()}>
              Delete
            </button>
          </>
        )}
        <button type="button" class="quiet" onClick={onCancel}>
          Close
        </button>
      </div>
      {error !== undefined && <Problem error={error} />}
      {preview && (
        <div class="preview" role="status">
          <h3>Preview</h3>
          <p>
            Selects <strong>{preview.matchedDevices}</strong> devices; re-decided <strong>{preview.flowsEvaluated}</strong> connection kinds
            reported in the last 24 h.
          </p>
          <FlowList title="Newly allowed" flows={preview.newlyAllowed} />
          <FlowList title="Newly denied" flows={preview.newlyDenied} />
        </div>
      )}
    </form>
  );
}

export function PoliciesPage() {
  const policies = useLiveData(
    () => all<Policy>("/v1/policies"),
    [],
    (c) => c.changes.some((x) => x.kind === "policy"),
  );
  const grants = useLiveData(
    () => all<Grant>("/v1/grants"),
    [],
    (c) => c.changes.some((x) => x.kind === "grant"),
  );
  const [editing, setEditing] = useState<Policy | "new">();
  const revocations = useAction();
  return (
    <section aria-labelledby="policies-title">
      <h1 id="policies-title">Policies and grants</h1>
      {policies.error && (
        <p role="alert" class="error">
          {policies.error.message}
        </p>
      )}
      <div class="buttons">
        <button type="button" onClick={() => setEditing("new")}>
          New rule
        </button>
      </div>
      {editing && (
        <Editor
          key={editing === "new" ? "new" : editing.id}
          policy={editing === "new" ? undefined : editing}
          onSaved={() => {
            setEditing(undefined);
            policies.reload();
          }}
          onCancel={() => setEditing(undefined)}
        />
      )}
      <DataTable
        caption={<>Rules ({policies.data?.length ?? 0}); default deny, a deny rule beats any allow</>}
        columns={["Name", "Effect", "Selector", "Destinations", "Updated", "Edit"]}
      >
        {(policies.data ?? []).map((p) => (
          <tr>
            <th scope="row">{p.name}</th>
            <td>
              <span class={`badge effect-${p.effect}`}>{p.effect}</span>
            </td>
            <td>
              <code>{JSON.stringify(p.selector)}</code>
            </td>
            <td>
              <code>{JSON.stringify(p.destinations)}</code>
            </td>
            <td>{when(p.updatedAt)}</td>
            <td>
              <button type="button" class="quiet" onClick={() => setEditing(p)} aria-label={`Edit ${p.name}`}>
                Edit
              </button>
            </td>
          </tr>
        ))}
      </DataTable>
      {grants.error && (
        <p role="alert" class="error">
          {grants.error.message}
        </p>
      )}
      <ActionFailure action={revocations} />
      <DataTable
        caption={<>Grants ({grants.data?.length ?? 0}): time-limited third-party access</>}
        columns={["Principal", "Target", "Valid", "Status"]}
      >
        {(grants.data ?? []).map((g) => (
          <tr>
            <th scope="row">{g.principal}</th>
            <td>
              <code>{JSON.stringify(g.target)}</code>
            </td>
            <td>
              {when(g.notBefore)} – {when(g.notAfter)}
            </td>
            <td>
              {g.revokedAt ? (
                `revoked ${when(g.revokedAt)}`
              ) : Date.parse(g.notAfter) < Date.now() ? (
                "expired"
              ) : (
                <button
                  type="button"
                  class="danger"
                  disabled={revocations.busy !== undefined}
                  onClick={() =>
                    void revocations.run(`The revocation of the grant to ${g.principal}`, () =>
                      api("POST", `/v1/grants/${encodeURIComponent(g.id)}/revoke`, {}).then(grants.reload),
                    )
                  }
                >
                  Revoke
                </button>
              )}
            </td>
          </tr>
        ))}
      </DataTable>
    </section>
  );
}
