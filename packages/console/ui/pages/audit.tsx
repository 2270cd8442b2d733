import { useState } from "preact/hooks";
import { ActionFailure, useAction } from "../action.tsx";
import { all, api, ApiError, request, upTo, type Page } from "../api.ts";
import { DataTable } from "../table.tsx";
import { useLiveData } from "../live-state.ts";
import { when, type AuditRecord, type ChainVerification, type ParkedEvent, type Source, type SourceHealth } from "../model.ts";

type Verification = ChainVerification;
type Parked = ParkedEvent;
type Health = SourceHealth;

function Chain() {
  const [result, setResult] = useState<Verification>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const verify = async () => {
    setBusy(true);
    setError(undefined);
    try {
      setResult(await api<Verification>("GET", "/v1/audit/verify"));
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  const exporting = useAction();
  const exportLines = () =>
    exporting.run("The export", async () => {
      const response = await request("GET", "/v1/audit/export");
      const url = URL.createObjectURL(await response.blob());
      const link = Object.assign(document.createElement("a"), { href: url, download: "audit.jsonl" });
      link.click();
      URL.revokeObjectURL(url);
    });
  return (
    <div class="buttons">
      <button type="button" onClick={() => void verify()} disabled={busy}>
        {busy ? "Verifying…" : "Verify the hash chain"}
      </button>
      <button type="button" class="quiet" onClick={() => void exportLines()} disabled={exporting.busy !== undefined}>
        {exporting.busy ? "Exporting…" : "Export (JSON Lines)"}
      </button>
      <ActionFailure action={exporting} />
      {result && (
        <p role="status" class={result.valid ? "ok" : "error"} data-testid="chain-result">
          {result.valid
            ? `The chain is intact: ${result.checked} records checked, up to #${result.lastSeq}.`
            : `The chain is broken at #${result.brokenAt?.seq}: ${result.brokenAt?.reason}`}
        </p>
      )}
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
    </div>
  );
}

/** The parked events the page reads at most (each reload reads them again). */
const maxParkedShown = 500;

/**
 * The least time between two reads of the trail (one request) on live changes: a revocation's record shows within it.
 * Every change of any kind began one, beside any under way (review 139).
 */
const trailSpacingMs = 1_000;
/**
 * The least time between two reads of the dead letters (up to 6 requests) or of the sources and their health on live
 * changes, however many come meanwhile: every change of any kind began them, beside those under way, and a fleet whose
 * devices kept changing made an open audit page spend its key's rate limit (review 139). Replay reads at once.
 */
const listingSpacingMs = 5_000;

export function AuditPage() {
  const [cursor, setCursor] = useState<string>();
  const trail = useLiveData(
    () => api<Page<AuditRecord>>("GET", `/v1/audit?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`),
    [cursor],
    undefined,
    150,
    undefined,
    trailSpacingMs,
  );
  const parked = useLiveData(() => upTo<Parked>("/v1/dead-letters", maxParkedShown), [], undefined, 150, undefined, listingSpacingMs);
  const replays = useAction();
  const sources = useLiveData(
    () => Promise.all([all<Source>("/v1/sources"), all<Health>("/v1/source-health")]),
    [],
    undefined,
    150,
    undefined,
    listingSpacingMs,
  );
  const health = new Map((sources.data?.[1] ?? []).map((h) => [h.sourceId, h]));
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit and sources</h1>
      <h2>Audit trail</h2>
      <Chain />
      {trail.error && (
        <p role="alert" class="error">
          {trail.error.message}
        </p>
      )}
      <DataTable caption={"Audit records in chain order"} columns={["#", "Time", "Action", "Actor", "Subject", "Hash"]}>
        {(trail.data?.items ?? []).map((r) => (
          <tr>
            <th scope="row">{r.seq}</th>
            <td>{when(r.time)}</td>
            <td>{r.action}</td>
            <td>{r.actor}</td>
            <td>{r.subject.startsWith("dev_") ? <a href={`#/devices/${encodeURIComponent(r.subject)}`}>{r.subject}</a> : r.subject}</td>
            <td>
              <code>{r.hash.slice(0, 12)}…</code>
            </td>
          </tr>
        ))}
      </DataTable>
      <div class="buttons">
        {cursor && (
          <button type="button" class="quiet" onClick={() => setCursor(undefined)}>
            First page
          </button>
        )}
        {trail.data?.next && (
          <button type="button" class="quiet" onClick={() => setCursor(trail.data?.next)}>
            Next page
          </button>
        )}
      </div>
      <h2>Sources</h2>
      {/* A key that may not list them (sources are an admin's) is told so, not shown an empty table (review 118). */}
      {sources.error && (
        <p role="alert" class="error">
          {sources.error.message}
        </p>
      )}
      <DataTable
        caption={"Operator cores and eSIM managers posting events, with their health"}
        columns={["Source", "Format", "Last event", "Accepted", "Rejected items", "Last rejection"]}
      >
        {(sources.data?.[0] ?? []).map((s) => {
          const h = health.get(s.id);
          return (
            <tr>
              <th scope="row">{s.name}</th>
              <td>{s.format}</td>
              <td>{when(h?.lastEventAt)}</td>
              <td>{h?.accepted ?? 0}</td>
              <td class={h?.rejected ? "warn" : ""}>{h?.rejected ?? 0}</td>
              <td>{h?.lastRejection ?? "—"}</td>
            </tr>
          );
        })}
      </DataTable>
      <h2>Dead letters</h2>
      {parked.error && (
        <p role="alert" class="error">
          {parked.error.message}
        </p>
      )}
      {parked.data?.more && (
        <p role="status" class="warn">
          More than {maxParkedShown.toLocaleString("en")} events are parked: this table shows the first{" "}
          {maxParkedShown.toLocaleString("en")} the API lists (GET /v1/dead-letters lists them all).
        </p>
      )}
      <ActionFailure action={replays} />
      <DataTable
        caption={
          <>
            Parked events ({parked.data?.items.length ?? 0}
            {parked.data?.more ? "+" : ""}): accepted, but not applicable yet
          </>
        }
        columns={["Event", "Reason", "Source", "Parked", "Replay"]}
      >
        {(parked.data?.items ?? []).map((p) => (
          <tr>
            <th scope="row">
              {p.type} <code>{p.subject}</code>
            </th>
            <td>{p.reason}</td>
            <td>{p.sourceId}</td>
            <td>{when(p.parkedAt)}</td>
            <td>
              <button
                type="button"
                class="quiet"
                disabled={replays.busy !== undefined}
                onClick={() =>
                  void replays.run(`The replay of ${p.type} ${p.subject}`, () =>
                    api("POST", `/v1/dead-letters/${encodeURIComponent(p.id)}/replay`, {}).then(parked.reload),
                  )
                }
              >
                Replay
              </button>
            </td>
          </tr>
        ))}
      </DataTable>
    </section>
  );
}
