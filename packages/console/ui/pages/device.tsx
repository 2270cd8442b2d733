import { useState } from "preact/hooks";
import { api, ApiError, upTo } from "../api.ts";
import { DataTable } from "../table.tsx";
import { useLiveData } from "../live-state.ts";
import type { LiveChange } from "../live.ts";
import { sessionsOf, when, type Device, type TimelineEntry, type TrafficGraph } from "../model.ts";

const actions = [
  { action: "suspend", label: "Suspend", when: ["active", "quarantined"] },
  { action: "quarantine", label: "Quarantine", when: ["active", "suspended"] },
  { action: "reinstate", label: "Reinstate", when: ["suspended", "quarantined"] },
  { action: "revoke", label: "Revoke (terminal)", when: ["active", "suspended", "quarantined"] },
] as const;

function Actions({ device, onDone }: { device: Device; onDone: () => void }) {
  const [reason, setReason] = useState("");
  const [message, setMessage] = useState<{ ok: boolean; text: string }>();
  const [busy, setBusy] = useState(false);
  const run = async (action: string) => {
    if (action === "revoke" && !confirm(`Revoke ${device.name ?? device.id}? Revocation is terminal.`)) return;
    setBusy(true);
    try {
      const result = await api<{ outcome: string; device: Device }>("POST", `/v1/devices/${encodeURIComponent(device.id)}/${action}`, {
        reason,
      });
      setMessage({ ok: true, text: `${action}: ${result.outcome}, the device is now ${result.device.state}` });
      setReason("");
      onDone();
    } catch (error) {
      setMessage({ ok: false, text: error instanceof ApiError ? error.message : String(error) });
    } finally {
      setBusy(false);
    }
  };
  const available = actions.filter((a) => (a.when as readonly string[]).includes(device.state));
  return (
    <form class="actions" onSubmit={(e) => e.preventDefault()} aria-labelledby="actions-title">
      <h2 id="actions-title">Actions</h2>
      {available.length === 0 ? (
        <p>No action applies to a {device.state} device.</p>
      ) : (
        <>
          <label for="reason">Reason (kept in the audit trail)</label>
          <input id="reason" value={reason} onInput={(e) => setReason(e.currentTarget.value)} required maxLength={500} />
          <div class="buttons">
            {available.map((a) => (
              <button
                type="button"
                class={a.action === "revoke" ? "danger" : ""}
                disabled={busy || !reason.trim()}
                onClick={() => run(a.action)}
              >
                {a.label}
              </button>
            ))}
          </div>
        </>
      )}
      {message && (
        <p role={message.ok ? "status" : "alert"} class={message.ok ? "ok" : "error"}>
          {message.text}
        </p>
      )}
    </form>
  );
}

/** The newest timeline entries a device's page shows, and how many it reads at most (the audit retention's worth). */
const shownEntries = 1_000;
const maxTimelineRead = 50_000;
/** How often a device's page reads its timeline again without a live change naming the device. */
export const timelineRefreshMs = 10_000;
/**
 * The least time between two reads of a device's timeline (up to 100 requests each), however many changes name the device
 * meanwhile: one a change, a device flapping its session made its open page spend its key's rate limit (review 139).
 */
export const timelineSpacingMs = 5_000;

export function DevicePage({ id }: { id: string }) {
  const path = `/v1/devices/${encodeURIComponent(id)}`;
  const mine = (change: LiveChange) => change.reset === true || change.changes.some((c) => c.key === id);
  const device = useLiveData(() => api<Device>("GET", path), [id], mine);
  // The timeline is listed oldest first: read to its end, and the newest `shownEntries` kept (review 118: the first 1,000
  // were read, and a device with more never showed its latest, a revocation included). Read again every
  // `timelineRefreshMs` too: anomalies and the timeline's records change without a feed change. Never more often than
  // every `timelineSpacingMs`.
  const timeline = useLiveData(
    () => upTo<TimelineEntry>(`${path}/timeline`, maxTimelineRead, 500).then(({ items }) => items.slice(-shownEntries)),
    [id],
    mine,
    150,
    timelineRefreshMs,
    timelineSpacingMs,
  );
  const flows = useLiveData(
    () => api<TrafficGraph>("GET", `/v1/traffic?hours=24&device=${encodeURIComponent(id)}`).then((graph) => graph.edges),
    [id],
    () => false,
  );
  if (device.error)
    return (
      <p role="alert" class="error">
        {device.error.message}
      </p>
    );
  const d = device.data;
  if (!d) return <p>Loading…</p>;
  const anomalies = (timeline.data ?? []).filter((entry) => entry.type.startsWith("anomaly."));
  const identity: [string, string | undefined][] = [
    ["Id", d.id],
    ["EID", d.eid],
    ["ICCIDs", d.iccids.join(", ")],
    ["IMSI", d.imsi],
    ["IMEI", d.identity.imei ?? d.imei],
    ["IMEI lock", d.imeiLock === undefined ? "tenant default" : d.imeiLock ? "on" : "off"],
    ["MSISDN", d.msisdn],
    ["IoT SAFE credential", d.credentialFingerprint],
    [
      "Labels",
      Object.entries(d.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(", "),
    ],
    ["Registered", when(d.createdAt)],
  ];
  return (
    <section aria-labelledby="device-title">
      <p>
        <a href="#/fleet">← Fleet</a>
      </p>
      <h1 id="device-title">
        {d.name ?? d.id}{" "}
        <span class={`badge state-${d.state}`} data-testid="device-state">
          {d.state}
        </span>
      </h1>
      {d.identity.stateReason && (
        <p>
          Reason: {d.identity.stateReason} ({when(d.identity.stateAt)})
        </p>
      )}
      <div class="grid">
        <div>
          <h2>Identity</h2>
          <dl>
            {identity.map(([k, v]) => (
              <>
                <dt>{k}</dt>
                <dd>{v || "—"}</dd>
              </>
            ))}
          </dl>
        </div>
        <Actions device={d} onDone={device.reload} />
      </div>
      <h2>Sessions</h2>
      <DataTable caption={"Sessions per bearer"} columns={["Bearer", "RAT", "Country", "APN", "Address", "Since"]}>
        {sessionsOf(d).length === 0 && (
          <tr>
            <td colSpan={6}>No session</td>
          </tr>
        )}
        {sessionsOf(d).map((s) => (
          <tr>
            <th scope="row">{s.bearer}</th>
            <td>{s.rat ?? "—"}</td>
            <td>{s.country ?? "—"}</td>
            <td>{s.apn ?? "—"}</td>
            <td>{s.ipv4 ?? s.ipv6 ?? "—"}</td>
            <td>{when(s.since)}</td>
          </tr>
        ))}
      </DataTable>
      <h2>eUICC profiles</h2>
      <DataTable caption={"Profiles as the eSIM manager reported them"} columns={["ICCID", "State", "seqNumber", "Reason", "At"]}>
        {Object.values(d.identity.profiles).map((p) => (
          <tr>
            <th scope="row">{p.iccid}</th>
            <td>{p.state}</td>
            <td>{p.seqNumber ?? "—"}</td>
            <td>{p.reason ?? "—"}</td>
            <td>{when(p.at)}</td>
          </tr>
        ))}
      </DataTable>
      <h2>Anomalies</h2>
      {anomalies.length === 0 ? (
        <p>None detected.</p>
      ) : (
        <ul class="anomalies">
          {anomalies.map((a) => (
            <li>
              {when(a.time)}: {a.type} {JSON.stringify(a.data)}
            </li>
          ))}
        </ul>
      )}
      <h2>Decisions reported by enforcement points (24 h)</h2>
      <DataTable caption={"Connections this device made, as PEPs decided them"} columns={["Destination", "Allowed", "Denied", "Last seen"]}>
        {(flows.data ?? []).map((e) => (
          <tr class={e.denied > 0 ? "denied" : ""}>
            <th scope="row">
              {e.destination}:{e.port}/{e.protocol} {e.novel && <span class="badge novel">new</span>}
            </th>
            <td>{e.allowed}</td>
            <td>{e.denied}</td>
            <td>{when(e.lastSeen)}</td>
          </tr>
        ))}
      </DataTable>
      <h2>Timeline</h2>
      <ol class="timeline" aria-label="Timeline, newest first">
        {[...(timeline.data ?? [])].reverse().map((entry) => (
          <li>
            <time dateTime={entry.time}>{when(entry.time)}</time> <strong>{entry.type}</strong> <span class="actor">by {entry.actor}</span>
            <details>
              <summary>Details</summary>
              <pre>{JSON.stringify(entry.data, null, 2)}</pre>
            </details>
          </li>
        ))}
      </ol>
    </section>
  );
}
