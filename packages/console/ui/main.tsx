import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, apiKey, setApiKey } from "./api.ts";
import { subscribeLive, type LiveStatus } from "./live.ts";
import { bumpLive } from "./live-state.ts";
import { AuditPage } from "./pages/audit.tsx";
import { AutomationPage } from "./pages/automation.tsx";
import { DevicePage } from "./pages/device.tsx";
import { FleetPage } from "./pages/fleet.tsx";
import { PoliciesPage } from "./pages/policies.tsx";
import { TrafficPage } from "./pages/traffic.tsx";

const sections = [
  { path: "fleet", label: "Fleet" },
  { path: "traffic", label: "Traffic map" },
  { path: "policies", label: "Policies and grants" },
  { path: "automation", label: "Webhooks and rules" },
  { path: "audit", label: "Audit and sources" },
] as const;

function useRoute(): string[] {
  const parse = () => (location.hash.replace(/^#\/?/, "") || "fleet").split("/").map(decodeURIComponent);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const onHash = () => setRoute(parse());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  return route;
}

function Login({ onKey }: { onKey: (key: string) => void }) {
  const [key, setKey] = useState("");
  return (
    <main class="login">
      <h1>simroot console</h1>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (key.trim()) onKey(key.trim());
        }}
      >
        <label for="api-key">API key</label>
        <input id="api-key" type="password" autoComplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} required />
        <p class="hint">A key of this tenant (admin, operator or viewer), as `npm start` printed it. It stays in this browser tab.</p>
        <button type="submit">Open the console</button>
      </form>
    </main>
  );
}

function App() {
  const [key, setKey] = useState(apiKey());
  const [status, setStatus] = useState<LiveStatus>("connecting");
  const [tenant, setTenant] = useState<{ id: string; name: string }>();
  const route = useRoute();

  useEffect(() => {
    const onUnauthorized = () => {
      setApiKey(null);
      setKey(null);
    };
    addEventListener("simroot:unauthorized", onUnauthorized);
    return () => removeEventListener("simroot:unauthorized", onUnauthorized);
  }, []);
  useEffect(() => (key ? subscribeLive(bumpLive, setStatus) : undefined), [key]);
  // Whose fleet this is, in the header: a key from someone's link would otherwise show another tenant unannounced.
  useEffect(() => {
    setTenant(undefined);
    if (!key) return;
    let current = true;
    api<{ id: string; name: string }>("GET", "/v1/tenant").then(
      (found) => current && setTenant(found),
      () => undefined,
    );
    return () => {
      current = false;
    };
  }, [key]);

  if (!key) {
    return (
      <Login
        onKey={(entered) => {
          setApiKey(entered);
          setKey(entered);
        }}
      />
    );
  }
  const [section = "fleet", id] = route;
  return (
    <>
      <a class="skip" href="#content">
        Skip to content
      </a>
      <header>
        <span class="brand">simroot</span>
        <nav aria-label="Sections">
          {sections.map((s) => (
            <a href={`#/${s.path}`} aria-current={section === s.path || (section === "devices" && s.path === "fleet") ? "page" : undefined}>
              {s.label}
            </a>
          ))}
        </nav>
        {tenant && (
          <span class="tenant" title={tenant.id} data-testid="tenant">
            Tenant: {tenant.name}
          </span>
        )}
        <span class={`live live-${status}`} role="status" aria-live="polite">
          {status === "live" ? "Live" : status === "connecting" ? "Connecting…" : "Offline, retrying"}
        </span>
        <button
          type="button"
          class="quiet"
          onClick={() => {
            setApiKey(null);
            setKey(null);
          }}
        >
          Sign out
        </button>
      </header>
      <main id="content" tabIndex={-1}>
        {section === "devices" && id ? (
          <DevicePage id={id} />
        ) : section === "traffic" ? (
          <TrafficPage />
        ) : section === "policies" ? (
          <PoliciesPage />
        ) : section === "automation" ? (
          <AutomationPage />
        ) : section === "audit" ? (
          <AuditPage />
        ) : (
          <FleetPage />
        )}
      </main>
    </>
  );
}

// A key passed in the fragment (`npm run demo` prints such a link) signs in a tab that holds no key, then is removed from
// the address bar. It never replaces the key a tab is signed in with: anyone's link would move the user to its tenant.
const fromFragment = /(?:^#|&)key=([^&]+)/.exec(location.hash)?.[1];
if (fromFragment) {
  if (!apiKey()) {
    try {
      setApiKey(decodeURIComponent(fromFragment));
    } catch {
      // Not a key (malformed escapes): the sign-in form asks for one.
    }
  }
  history.replaceState(null, "", `${location.pathname}#/fleet`);
}
render(<App />, document.getElementById("app")!);
