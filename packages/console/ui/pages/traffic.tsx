import { useState } from "preact/hooks";
import { api, ApiError } from "../api.ts";
import { DataTable } from "../table.tsx";
import { useLiveData } from "../live-state.ts";
import type { TrafficEdge, TrafficGraph, WhatIfDecision } from "../model.ts";

type Edge = TrafficEdge;

const bearers = ["cellular", "private-5g", "wifi", "satellite"];
const edgeName = (e: Edge) => `${e.segment} → ${e.destination}:${e.port}/${e.protocol}`;
const isIp = (text: string) => /^[\d.]+$/.test(text) || text.includes(":");

function WhatIf({ edge }: { edge: Edge }) {
  const [device, setDevice] = useState(edge.devices[0] ?? "");
  const [bearer, setBearer] = useState("cellular");
  const [country, setCountry] = useState("");
  const [result, setResult] = useState<WhatIfDecision>();
  const [error, setError] = useState<string>();
  const decide = async () => {
    setError(undefined);
    try {
      setResult(
        await api<WhatIfDecision>("POST", "/v1/decisions/evaluate", {
          device: { deviceId: device },
          destination: isIp(edge.destination) ? { ip: edge.destination } : { fqdn: edge.destination },
          port: edge.port,
          protocol: edge.protocol,
          bearer,
          ...(country ? { country } : {}),
        }),
      );
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  };
  return (
    <form
      class="whatif"
      aria-label={`What-if for ${edgeName(edge)}`}
      onSubmit={(e) => {
        e.preventDefault();
        void decide();
      }}
    >
      <h3>What-if: {edgeName(edge)}</h3>
      <label>
        Device
        <input value={device} onInput={(e) => setDevice(e.currentTarget.value)} list="edge-devices" required />
        <datalist id="edge-devices">
          {edge.devices.map((d) => (
            <option value={d} />
          ))}
        </datalist>
      </label>
      <label>
        Bearer
        <select value={bearer} onChange={(e) => setBearer(e.currentTarget.value)}>
          {bearers.map((b) => (
            <option value={b}>{b}</option>
          ))}
        </select>
      </label>
      <label>
        Country
        <input value={country} onInput={(e) => setCountry(e.currentTarget.value.toUpperCase())} maxLength={2} placeholder="FR" />
      </label>
      <button type="submit">Decide</button>
      {result && (
        <p role="status" class={result.allow ? "ok" : "error"}>
          {result.allow ? "Allowed" : "Denied"} ({result.reason}): {result.explanation}
        </p>
      )}
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
    </form>
  );
}

export function TrafficPage() {
  const [groupBy, setGroupBy] = useState("fleet");
  const [hours, setHours] = useState(24);
  const [selected, setSelected] = useState<Edge>();
  const { data, error, loading } = useLiveData(
    () => api<TrafficGraph>("GET", `/v1/traffic?groupBy=${encodeURIComponent(groupBy)}&hours=${hours}`),
    [groupBy, hours],
    () => false,
  );
  const graph = data ?? { segments: [], edges: [], reportsRead: 0, truncated: false };
  const destinations = [...new Set(graph.edges.map((e) => `${e.destination}:${e.port}/${e.protocol}`))];
  const rowHeight = 34;
  const height = Math.max(graph.segments.length, destinations.length, 1) * rowHeight + 20;
  const y = (index: number, count: number) => 20 + index * ((height - 20) / Math.max(count, 1)) + rowHeight / 2;
  const max = Math.max(1, ...graph.edges.map((e) => e.allowed + e.denied));
  return (
    <section aria-labelledby="traffic-title">
      <h1 id="traffic-title">Traffic map</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Segments by label
          <input value={groupBy} onChange={(e) => setGroupBy(e.currentTarget.value || "fleet")} />
        </label>
        <label>
          Window
          <select value={hours} onChange={(e) => setHours(Number(e.currentTarget.value))}>
            <option value={1}>1 hour</option>
            <option value={24}>24 hours</option>
            <option value={168}>7 days</option>
          </select>
        </label>
      </form>
      {error && (
        <p role="alert" class="error">
          {error.message}
        </p>
      )}
      <p class="legend">
        <span class="swatch allow" /> allowed <span class="swatch deny" /> denied <span class="swatch novel" /> dashed: new in the last hour
        {graph.truncated && " · the window holds more reports than one map reads: showing the newest"}
      </p>
      {loading && <p>Loading…</p>}
      <svg
        class="map"
        viewBox={`0 0 900 ${height}`}
        role="img"
        aria-label={`${graph.segments.length} segments and ${destinations.length} destinations; the table below lists every edge`}
      >
        {graph.edges.map((e) => {
          const from = y(
            graph.segments.findIndex((s) => s.segment === e.segment),
            graph.segments.length,
          );
          const to = y(destinations.indexOf(`${e.destination}:${e.port}/${e.protocol}`), destinations.length);
          const width = 1.5 + (6 * Math.log1p(e.allowed + e.denied)) / Math.log1p(max);
          return (
            // biome-ignore lint/a11y/noStaticElementInteractions: a mouse shortcut; every edge has a keyboard-reachable What-if button in the table below
            <path
              class={`edge ${e.denied > 0 ? "deny" : "allow"} ${e.novel ? "novel" : ""} ${selected === e ? "selected" : ""}`}
              d={`M 240 ${from} C 450 ${from}, 450 ${to}, 660 ${to}`}
              stroke-width={width}
              onClick={() => setSelected(e)}
            >
              <title>{`${edgeName(e)}: ${e.allowed} allowed, ${e.denied} denied`}</title>
            </path>
          );
        })}
        {graph.segments.map((s, i) => (
          <g>
            <rect x="10" y={y(i, graph.segments.length) - 13} width="230" height="26" rx="6" class="node segment" />
            <text x="20" y={y(i, graph.segments.length) + 5}>{`${s.segment} (${s.devices})`}</text>
          </g>
        ))}
        {destinations.map((d, i) => (
          <g>
            <rect x="660" y={y(i, destinations.length) - 13} width="230" height="26" rx="6" class="node destination" />
            <text x="670" y={y(i, destinations.length) + 5}>
              {d.length > 32 ? `${d.slice(0, 31)}…` : d}
            </text>
          </g>
        ))}
      </svg>
      {selected && <WhatIf edge={selected} key={edgeName(selected)} />}
      <DataTable
        caption={
          <>
            Every edge ({graph.edges.length}) from {graph.reportsRead} flow reports
          </>
        }
        columns={["Segment", "Destination", "Allowed", "Denied", "Devices", "What-if"]}
      >
        {graph.edges.map((e) => (
          <tr class={`${e.denied > 0 ? "denied" : ""} ${e.novel ? "novel" : ""}`}>
            <th scope="row">{e.segment}</th>
            <td>
              {e.destination}:{e.port}/{e.protocol} {e.novel && <span class="badge novel">new</span>}
            </td>
            <td>{e.allowed}</td>
            <td>{e.denied}</td>
            <td>{e.devices.length}</td>
            <td>
              <button type="button" class="quiet" onClick={() => setSelected(e)} aria-label={`What-if for ${edgeName(e)}`}>
                What-if
              </button>
            </td>
          </tr>
        ))}
      </DataTable>
    </section>
  );
}
