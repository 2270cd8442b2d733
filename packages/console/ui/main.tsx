import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, apiKey, setApiKey } from "./api.ts";
import { PageBoundary } from "./boundary.tsx";
import { idleMinutes, whenIdle } from "./idle.ts";
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

/**
 * A route's segment decoded, or as its link spelt it when it holds a malformed escape: `#/devices/%E0` (anyone's link, a
 * truncated copy) threw while drawing, and the tab showed nothing, not even Sign out, however often it was reloaded
 * (review 139). Undecoded, it names no device, and the page says so.
 */
function segment(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function useRoute(): string[] {
  const parse = () => (location.hash.replace(/^#\/?/, "") || "fleet").split("/").map(segment);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const onHash = () => setRoute(parse());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  return route;
}

/**
 * The tenant a link's key opens, asked with that key (the tab holds none): the sign-in page names it before the user
 * chooses. Undefined while asked; null when the key opens nothing.
 */
function useOfferedTenant(offered: string | undefined): { name: string } | null | undefined {
  const [tenant, setTenant] = useState<{ name: string } | null>();
  useEffect(() => {
    if (!offered) return;
    let current = true;
    // Not through `request`: a 401 there signs the tab out, and the user may have signed in with a key of their own
    // by the time a bad link's key is refused (review 91).
    fetch("/v1/tenant", { headers: { authorization: `Bearer ${offered}` } })
      .then((answer) => (answer.ok ? (answer.json() as Promise<{ name: string }>) : Promise.reject(new Error(String(answer.status)))))
      .then(
        (found) => current && setTenant(found),
        () => current && setTenant(null),
      );
    return () => {
      current = false;
    };
  }, [offered]);
  return offered ? tenant : null;
}

function Login({ onKey, offered, notice }: { onKey: (key: string) => void; offered?: string; notice?: string }) {
  const [key, setKey] = useState("");
  const tenant = useOfferedTenant(offered);
  return (
    <main class="login">
      <h1>simroot console</h1>
      {notice && (
        <p role="alert" class="notice">
          {notice}
        </p>
      )}
      {offered && tenant && (
        <section class="offer" aria-labelledby="offer-title">
          <h2 id="offer-title">The link you followed holds a key</h2>
          <p>It opens the console of tenant {tenant.name}. Open it only if you expected to: what you do there goes to that tenant.</p>
          <button type="button" onClick={() => onKey(offered)}>
            Open {tenant.name}'s console
          </button>
        </section>
      )}
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (key.trim()) onKey(key.trim());
        }}
      >
        <label for="api-key">API key</label>
        <input id="api-key" type="password" autoComplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} required />
        <p class="hint">
          A key of this tenant (admin, operator or viewer), as `npm start` printed it. It stays in this browser tab until you sign out or
          leave it {idleMinutes} minutes without using it.
        </p>
        <button type="submit">Open the console</button>
      </form>
    </main>
  );
}

function App() {
  const [key, setKey] = useState(apiKey());
  const [status, setStatus] = useState<LiveStatus>("connecting");
  const [tenant, setTenant] = useState<{ id: string; name: string }>();
  /** Why the tab was signed out, when it was not by the user's own Sign out. */
  const [notice, setNotice] = useState<string>();
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
  // The key is forgotten, here and in the tab's storage, once the tab is left alone for `idleMinutes`.
  useEffect(
    () =>
      key
        ? whenIdle(idleMinutes, () => {
            setApiKey(null);
            setKey(null);
            setNotice(`Signed out after ${idleMinutes} minutes without activity. Sign in again to go on.`);
          })
        : undefined,
    [key],
  );
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
        offered={offered}
        notice={notice}
        onKey={(entered) => {
          offered = undefined;
          setNotice(undefined);
          setApiKey(entered);
          setKey(entered);
        }}
      />
    );
  }
  const [section = "fleet", id] = route;
  const pageName = section === "devices" && id ? "device" : (sections.find((s) => s.path === section) ?? sections[0]).label;
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
        <PageBoundary key={route.join("/")} name={pageName}>
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
        </PageBoundary>
      </main>
    </>
  );
}

// A key passed in the fragment (`npm run demo` prints such a link) is offered to a tab that holds no key: the sign-in
// page names its tenant and the user chooses (followed unawares, anyone's link signed the tab in to its sender's tenant).
// It never replaces the key a tab is signed in with, and is removed from the address bar at once.
let offered: string | undefined;
const fromFragment = /(?:^#|&)key=([^&]+)/.exec(location.hash)?.[1];
if (fromFragment) {
  if (!apiKey()) {
    try {
      offered = decodeURIComponent(fromFragment);
    } catch {
      // Not a key (malformed escapes): the sign-in form asks for one.
    }
  }
  history.replaceState(null, "", `${location.pathname}#/fleet`);
}
render(<App />, document.getElementById("app")!);
