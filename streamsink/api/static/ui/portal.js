// The Stream Portal: one stream's sinks, their transformation, attempts and
// the stream's recent events. Every action is a public REST API call with the
// token from the portal link (#key=...). The token's own capability comes from
// GET /api/v1/auth/whoami: a read-only token (readOnly in stream-portal-access)
// sees no write control, and a note says why. Until the answer is in, no write
// control is shown either; the server refuses a read-only token's writes anyway.

import { html, render, useState, useEffect, useCallback, useRef } from "./html.js";
import { createApi, tokenFromFragment, seg } from "./api.js";
import { SinkList, SinkDetail, SinkForm } from "./portal-sinks.js";
import { RecentEvents } from "./portal-logs.js";

const POLL_MS = 2000;
const streamId = decodeURIComponent(location.pathname.replace(/^\/portal\//, "").replace(/\/$/, ""));

function LoginNotice({ reason }) {
  return html`<main id="main">
    <section class="panel" aria-labelledby="login-title">
      <h2 id="login-title">Sign-in needed</h2>
      <p class="notice error" role="alert">${reason}</p>
      <p>Open the portal with a fresh link from the application that gave you access
        (a link ending in <code>#key=…</code>). No stream data is shown without a valid key.</p>
    </section>
  </main>`;
}

function App() {
  const [token] = useState(() => tokenFromFragment(`streamsink.portal.${streamId}`));
  const [denied, setDenied] = useState(token ? "" : "This portal link has no access key.");
  const api = useRef(
    createApi({
      token,
      onUnauthorized: () => {
        sessionStorage.removeItem(`streamsink.portal.${streamId}`);
        setDenied("Your access key has expired or was ended.");
      },
    }),
  ).current;
  const [stream, setStream] = useState(null);
  const [sinks, setSinks] = useState([]);
  const [error, setError] = useState("");
  const [selected, setSelected] = useState(null);
  const [creating, setCreating] = useState(false);
  const [attemptsBySink, setAttemptsBySink] = useState({});
  const [tick, setTick] = useState(0);
  const [access, setAccess] = useState(null); // GET /auth/whoami: {kind, readOnly, ...}
  const inFlight = useRef(false);
  const polls = useRef(0);
  const selectedRef = useRef(null);
  selectedRef.current = selected;

  const refresh = useCallback(async () => {
    if (inFlight.current || denied) return;
    inFlight.current = true;
    try {
      const base = `/stream/${seg(streamId)}`;
      const [s, list, me] = await Promise.all([
        api.get(base),
        api.get(`${base}/sink`, { limit: 250 }),
        access || api.get("/auth/whoami").catch(() => null), // asked again next poll
      ]);
      if (!access && me) setAccess(me);
      setStream(s);
      setSinks(list.data);
      // each sink's recent successes (last delivery, throughput): every poll for
      // a few sinks, every fifth poll for many; the selected sink always
      polls.current += 1;
      const every = list.data.length <= 10 || polls.current % 5 === 1;
      const due = list.data.filter((k) => every || k.id === selectedRef.current).slice(0, 100);
      const recent = {};
      await Promise.all(
        due.map(async (k) => {
          try {
            const page = await api.get(`${base}/sink/${seg(k.id)}/attempt`, { limit: 100, status: 0 });
            recent[k.id] = page.data;
          } catch {
            recent[k.id] = null; // poller sinks have no attempt log
          }
        }),
      );
      setAttemptsBySink((old) => ({ ...old, ...recent }));
      setError("");
      setTick((t) => t + 1);
    } catch (err) {
      if (err.status === 403) setDenied(`This access key does not reach this stream (${err.detail}).`);
      else if (err.status !== 401) setError(err.message);
    } finally {
      inFlight.current = false;
    }
  }, [api, denied, access]);

  useEffect(() => {
    if (denied) return undefined;
    refresh();
    const timer = setInterval(refresh, POLL_MS);
    return () => clearInterval(timer);
  }, [refresh, denied]);

  if (denied) return html`<${LoginNotice} reason=${denied} />`;

  const sink = sinks.find((k) => k.id === selected) || null;
  const canWrite = !!access && !access.readOnly;
  const title = stream ? stream.name || stream.uid || stream.id : streamId;
  return html`
    <header class="top" role="banner">
      <h1>Stream portal</h1>
      <span class="sub">stream <strong data-testid="stream-name">${title}</strong>
        <code class="muted"> ${stream ? stream.id : ""}</code></span>
    </header>
    <main id="main">
      ${error && html`<p class="notice error" role="alert">${error}</p>`}
      ${access && access.readOnly &&
      html`<p class="notice info" data-testid="read-only-note">This access key is <strong>read-only</strong>
        (the application that gave you this link made it so): you can look at the sinks, their
        transformations, attempts and the stream's events, and preview a transformation, but not
        create, change, enable, disable, retry, skip or delete anything. Ask that application for a
        link that can write to make changes.</p>`}
      <div class="grid-2 portal-grid">
        <section class="panel" aria-labelledby="sinks-title">
          <header class="row spread">
            <h2 id="sinks-title">Sinks</h2>
            ${canWrite &&
            html`<button type="button" class="primary" onClick=${() => { setCreating(true); setSelected(null); }}>
              New sink
            </button>`}
          </header>
          <${SinkList}
            sinks=${sinks}
            attempts=${attemptsBySink}
            selected=${selected}
            onSelect=${(id) => { setSelected(id); setCreating(false); }}
          />
        </section>
        <div>
          ${creating && canWrite &&
          html`<section class="panel" aria-labelledby="new-sink-title">
            <h2 id="new-sink-title">New sink</h2>
            <${SinkForm}
              api=${api}
              streamId=${streamId}
              onCancel=${() => setCreating(false)}
              onSaved=${(created) => { setCreating(false); setSelected(created.id); refresh(); }}
            />
          </section>`}
          ${sink &&
          html`<${SinkDetail}
            key=${sink.id}
            api=${api}
            streamId=${streamId}
            sink=${sink}
            tick=${tick}
            canWrite=${canWrite}
            onChanged=${refresh}
            onDeleted=${() => { setSelected(null); refresh(); }}
          />`}
          ${!creating && !sink && html`<p class="panel muted">Select a sink${canWrite ? ", or create one" : ""}.</p>`}
        </div>
      </div>
      <${RecentEvents} api=${api} streamId=${streamId} tick=${tick} />
    </main>`;
}

// a new link opened in this tab (only its fragment differs): start over with its key
addEventListener("hashchange", () => {
  if (/(^#|&)key=/.test(location.hash)) location.reload();
});

render(html`<${App} />`, document.getElementById("app"));
