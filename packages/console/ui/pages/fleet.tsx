import { useEffect, useMemo, useState } from "preact/hooks";
import { api, ApiError, upTo } from "../api.ts";
import { DataTable } from "../table.tsx";
import { onLive } from "../live-state.ts";
import { countryOf, ipOf, sessionsOf, states, when, type Device } from "../model.ts";

/** Past this many changed devices in one burst, the whole list is read again instead of each device. */
const maxIncremental = 50;

/**
 * The fleet, kept current by live changes: the devices a change names are read again one by
 * one (O(changes), not O(fleet)); a burst larger than `maxIncremental`, or a reset, reloads all.
 */
/** The fleet page reads at most this many devices; past it, it says it shows part of the fleet. */
export const maxListed = 20_000;

/**
 * The listing read into what the page holds: of two copies of a device, the newer by revision. A list read over many
 * pages may finish after a live re-read showed a device's change (review 118: a revoked device went back to "active"
 * when the fleet's first read, begun before the revocation, arrived after it). Devices only the page holds (registered
 * after the listing passed them, or past its end) stay.
 */
function merged(previous: ReadonlyMap<string, Device>, listed: readonly Device[]): Map<string, Device> {
  const next = new Map(previous);
  for (const device of listed) {
    const held = next.get(device.id);
    if (!held || held.revision <= device.revision) next.set(device.id, device);
  }
  return next;
}

function useFleet() {
  const [byId, setById] = useState<Map<string, Device>>(new Map());
  const [error, setError] = useState<Error>();
  const [loading, setLoading] = useState(true);
  const [partial, setPartial] = useState(false);
  useEffect(() => {
    let stopped = false;
    let pending = new Set<string>();
    let reloadAll = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    /**
     * The read of the whole list under way, if any: a burst seen meanwhile is read by one more read once it ends, not by
     * another beside it (review 139: each burst of more than `maxIncremental` devices began a read of up to 200 pages
     * beside those under way, and a fleet whose changes came in large bursts made the open page spend its key's rate
     * limit). The one after begins as soon as it ends: a revocation in a burst the read under way passed shows then.
     */
    let listing: Promise<void> | undefined;
    let listAgain = false;
    const loadAll = (): Promise<void> => {
      if (listing) {
        listAgain = true;
        return listing;
      }
      listing = readList().finally(() => {
        listing = undefined;
        if (!listAgain || stopped) return;
        listAgain = false;
        void loadAll();
      });
      return listing;
    };
    const readList = () =>
      upTo<Device>("/v1/devices", maxListed).then(
        ({ items, more }) => {
          if (stopped) return;
          setById((previous) => merged(previous, items));
          setPartial(more);
          setLoading(false);
        },
        (e: Error) => {
          if (stopped) return;
          setError(e);
          setLoading(false);
        },
      );
    const flush = async () => {
      timer = undefined;
      const ids = [...pending];
      pending = new Set();
      if (reloadAll || ids.length > maxIncremental) {
        reloadAll = false;
        return loadAll();
      }
      const read = await Promise.all(
        ids.map((id) =>
          api<Device>("GET", `/v1/devices/${encodeURIComponent(id)}`).catch((e) =>
            e instanceof ApiError && e.status === 404 ? null : undefined,
          ),
        ),
      );
      if (stopped) return;
      setById((previous) => {
        // The newer copy wins here too: of two re-reads of a device in flight, the earlier may answer last (review 120).
        const next = merged(
          previous,
          read.filter((device): device is Device => !!device),
        );
        ids.forEach((id, index) => {
          if (read[index] === null) next.delete(id);
        });
        return next;
      });
    };
    void loadAll();
    const unsubscribe = onLive((change) => {
      const named = change.changes.filter((c) => c.kind === "device").map((c) => c.key);
      if (change.reset) reloadAll = true;
      for (const id of named) pending.add(id);
      if (named.length > 0 || reloadAll) timer ??= setTimeout(() => void flush(), 100);
    });
    return () => {
      stopped = true;
      unsubscribe();
      clearTimeout(timer);
    };
  }, []);
  const devices = useMemo(
    () => [...byId.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id)),
    [byId],
  );
  return { devices, error, loading, partial };
}

export function FleetPage() {
  const { devices, error, loading, partial } = useFleet();
  const [label, setLabel] = useState("");
  const [state, setState] = useState("");
  const [bearer, setBearer] = useState("");
  const [country, setCountry] = useState("");
  const [text, setText] = useState("");

  const bearers = useMemo(() => [...new Set(devices.flatMap((d) => sessionsOf(d).map((s) => s.bearer)))].sort(), [devices]);
  const countries = useMemo(() => [...new Set(devices.map(countryOf).filter((c): c is string => !!c))].sort(), [devices]);
  const shown = devices.filter((device) => {
    if (state && device.state !== state) return false;
    if (bearer && !sessionsOf(device).some((s) => s.bearer === bearer)) return false;
    if (country && countryOf(device) !== country) return false;
    if (label) {
      // `key` or `key=value`, split at the first `=` (a value may hold one); a key the device's own labels hold, not one
      // every object has (`constructor`: review 118).
      const at = label.indexOf("=");
      const key = (at < 0 ? label : label.slice(0, at)).trim();
      const held = Object.hasOwn(device.labels, key);
      if (at < 0 ? !held : !held || device.labels[key] !== label.slice(at + 1).trim()) return false;
    }
    if (text) {
      const needle = text.toLowerCase();
      const haystack = [device.id, device.name, device.eid, device.imsi, device.imei, device.msisdn, ipOf(device), ...device.iccids];
      if (!haystack.some((field) => field?.toLowerCase().includes(needle))) return false;
    }
    return true;
  });
  const counts = Object.fromEntries(states.map((s) => [s, devices.filter((d) => d.state === s).length]));

  return (
    <section aria-labelledby="fleet-title">
      <h1 id="fleet-title">Fleet</h1>
      <ul class="counts" aria-label="Devices by state">
        <li>
          <strong>
            {devices.length}
            {partial ? "+" : ""}
          </strong>{" "}
          devices
        </li>
        {states.map((s) => (
          <li class={`state-${s}`}>
            <strong>{counts[s]}</strong> {s}
          </li>
        ))}
      </ul>
      <form class="filters" aria-label="Filter the fleet" onSubmit={(e) => e.preventDefault()}>
        <label>
          Search
          <input type="search" value={text} onInput={(e) => setText(e.currentTarget.value)} placeholder="id, name, EID, IMSI, IMEI, IP" />
        </label>
        <label>
          Label
          <input value={label} onInput={(e) => setLabel(e.currentTarget.value)} placeholder="fleet=meters" />
        </label>
        <label>
          State
          <select value={state} onChange={(e) => setState(e.currentTarget.value)}>
            <option value="">any</option>
            {states.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Bearer
          <select value={bearer} onChange={(e) => setBearer(e.currentTarget.value)}>
            <option value="">any</option>
            {bearers.map((b) => (
              <option value={b}>{b}</option>
            ))}
          </select>
        </label>
        <label>
          Country
          <select value={country} onChange={(e) => setCountry(e.currentTarget.value)}>
            <option value="">any</option>
            {countries.map((c) => (
              <option value={c}>{c}</option>
            ))}
          </select>
        </label>
      </form>
      {partial && (
        <p class="hint" role="status">
          The fleet holds more than the first {maxListed.toLocaleString("en")} devices this page reads: counts, filters and search cover
          those only. Look a device up by any identifier with <code>GET /v1/devices/lookup</code>.
        </p>
      )}
      {error && (
        <p role="alert" class="error">
          {error.message}
        </p>
      )}
      <DataTable
        caption={loading ? "Loading devices…" : `${shown.length} of ${devices.length}${partial ? "+" : ""} devices`}
        columns={["Device", "State", "Bearer", "Country", "Session", "Labels", "Last event"]}
      >
        {shown.slice(0, 500).map((device) => (
          <tr data-device={device.id}>
            <th scope="row">
              <a href={`#/devices/${encodeURIComponent(device.id)}`}>{device.name ?? device.id}</a>
            </th>
            <td>
              <span class={`badge state-${device.state}`}>{device.state}</span>
            </td>
            <td>
              {sessionsOf(device)
                .map((s) => s.bearer)
                .join(", ") || "—"}
            </td>
            <td>{countryOf(device) ?? "—"}</td>
            <td>{ipOf(device) ?? "no session"}</td>
            <td>
              {Object.entries(device.labels).map(([k, v]) => (
                <span class="label">
                  {k}={v}
                </span>
              ))}
            </td>
            <td>{when(device.updatedAt)}</td>
          </tr>
        ))}
      </DataTable>
      {shown.length > 500 && <p class="hint">Showing the first 500: narrow the filters to see the rest.</p>}
    </section>
  );
}
