// The operator console: every stream and sink (failing first), the last
// hour's traffic, delivery queues and workers, and the local receiver's
// traces as waterfalls. Each figure comes from a public API call with the
// admin token (GET /api/v1/ops/overview, GET /api/v1/local/traces); the token
// is pasted here or given as /console#key=... and kept in sessionStorage.

import { html, render, useState, useEffect, useCallback, useMemo, useRef } from "htm/preact";
import { createApi, tokenFromFragment, when } from "./api.js";
import { renderWaterfall } from "./waterfall.js";

const STORAGE_KEY = "streamsink.console.token";
const POLL_MS = 5000;
const STREAMS_PER_PAGE = 50;
const TRACES_SHOWN = 10;

function Login({ reason, onToken }) {
  const [value, setValue] = useState("");
  const submit = (e) => {
    e.preventDefault();
    const token = value.trim();
    if (token) onToken(token);
  };
  return html`<header class="top" role="banner"><h1>streamsink console</h1></header>
  <main id="main">
    <section class="panel login" aria-labelledby="login-title">
      <h2 id="login-title">Sign in to the console</h2>
      ${reason && html`<p class="notice error" role="alert" data-testid="login-error">${reason}</p>`}
      <form onSubmit=${submit}>
        <label for="admin-token">Admin token
          <span class="hint"> (STREAMSINK_AUTH_TOKEN, or the token file the serve banner
          names; kept in this browser tab only)</span></label>
        <input id="admin-token" name="token" type="password" autocomplete="off" spellcheck="false"
          required value=${value} onInput=${(e) => setValue(e.currentTarget.value)} />
        <div class="row form-actions"><button type="submit" class="primary">Open the console</button></div>
      </form>
    </section>
  </main>`;
}

function Badge({ status }) {
  return html`<span class="badge ${status}" data-testid="status-badge">${status}</span>`;
}

function Stats({ data }) {
  const { totals, queues, workers } = data;
  const by = totals.sinksByStatus;
  return html`<section class="panel" aria-labelledby="platform-title">
    <h2 id="platform-title">Platform</h2>
    <dl class="stats">
      <div><dt>Streams</dt><dd data-testid="stat-streams">${totals.streams}</dd></div>
      <div>
        <dt>Sinks</dt>
        <dd data-testid="stat-sinks">${totals.sinks}${totals.complete ? "" : "+"}
          <span class="stat-detail">${Object.entries(by)
            .filter(([, n]) => n)
            .map(([s, n]) => `${n} ${s}`)
            .join(" · ")}</span></dd>
      </div>
      <div class=${totals.failingSinks ? "stat-bad" : ""}>
        <dt>Failing sinks</dt><dd data-testid="stat-failing">${totals.failingSinks}</dd>
      </div>
      <div class=${workers.alive ? "" : "stat-bad"}>
        <dt>Workers alive</dt>
        <dd data-testid="workers-alive" data-alive=${workers.alive}>${workers.alive}
          <span class="stat-detail">of ${workers.registered} registered</span></dd>
      </div>
      ${queues.map(
        (q) => html`<div key=${q.name}>
          <dt>Queue <code>${q.name}</code></dt>
          <dd data-testid=${`queue-${q.name}`} data-queued=${q.queued}>${q.queued}
            <span class="stat-detail">queued · ${q.scheduled} scheduled · ${q.started} running</span></dd>
        </div>`,
      )}
    </dl>
  </section>`;
}

function minuteText(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function Chart({ title, points, field, unit }) {
  const values = points.map((p) => p[field] || 0);
  const total = values.reduce((a, b) => a + b, 0);
  const peak = Math.max(0, ...values);
  const W = 300;
  const H = 64;
  const bw = W / Math.max(values.length, 1);
  const label = `${title}: ${total} ${unit} in the last ${values.length} minutes, at most ${peak} in one minute`;
  return html`<figure class="chart" data-testid=${`chart-${field}`} data-total=${total}>
    <figcaption>
      <span class="chart-title">${title}</span>
      <strong class="chart-total">${total}</strong>
      <span class="muted"> last ${values.length} min · peak ${peak}/min</span>
    </figcaption>
    <svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label=${label}>
      <line class="chart-axis-line" x1="0" y1=${H - 0.5} x2=${W} y2=${H - 0.5} />
      ${values.map((v, i) => {
        if (!v) return null;
        const h = Math.max(2, (v / peak) * (H - 4));
        return html`<rect class="chart-bar" x=${i * bw + 0.5} y=${H - h} width=${Math.max(bw - 1, 1)} height=${h}>
          <title>${minuteText(points[i].t)}: ${v} ${unit}</title>
        </rect>`;
      })}
    </svg>
    <div class="chart-axis muted" aria-hidden="true"><span>${values.length} min ago</span><span>now</span></div>
  </figure>`;
}

function Charts({ series }) {
  const points = series.points;
  return html`<section class="panel" aria-labelledby="traffic-title">
    <h2 id="traffic-title">Traffic, per minute</h2>
    <div class="charts">
      <${Chart} title="Events in" points=${points} field="eventsIn" unit="events" />
      <${Chart} title="Spans out" points=${points} field="spansOut" unit="spans" />
      <${Chart} title="Failures" points=${points} field="failures" unit="failed deliveries" />
    </div>
  </section>`;
}

function lagText(lag) {
  if (!lag) return "";
  if (!lag.events) return "up to date";
  const n = `${lag.events}${lag.more ? "+" : ""} event${lag.events === 1 && !lag.more ? "" : "s"}`;
  return lag.oldestAt ? `${n}, oldest ${when(lag.oldestAt)}` : n;
}

function SinkCells({ sink }) {
  const last = sink.lastAttempt;
  return html`
    <td data-label="Sink"><div class="sink-name"><strong>${sink.uid || sink.id}</strong>
      <div class="muted small"><code>${sink.id}</code></div>
      ${sink.url && html`<div class="small url"><code>${sink.url}</code></div>`}</div></td>
    <td data-label="Type"><span class="badge type">${sink.type}</span></td>
    <td data-label="Status"><${Badge} status=${sink.status} /></td>
    <td data-label="Failure" class="failure-reason">${sink.failureReason || ""}</td>
    <td data-label="Next retry" class="next-retry">${sink.nextRetryAt
      ? html`<time datetime=${sink.nextRetryAt} title=${sink.nextRetryAt}>${Date.parse(sink.nextRetryAt) - Date.now() < 1000
          ? "due now"
          : when(sink.nextRetryAt)}</time>`
      : ""}</td>
    <td data-label="Lag" class="lag">${lagText(sink.lag)}</td>
    <td data-label="Last attempt" class="last-attempt">${last
      ? html`<span><span class="badge ${last.outcome === "success" ? "success" : last.outcome === "retrying" ? "retrying" : "failed"}">${last.outcome}</span>
          <time datetime=${last.timestamp} title=${last.timestamp}> ${when(last.timestamp)}</time></span>`
      : html`<span class="muted">none</span>`}</td>`;
}

const SINK_HEADERS = ["Sink", "Type", "Status", "Failure", "Next retry", "Lag", "Last attempt"];

function FailingSinks({ sinks, total }) {
  if (!sinks.length) return null;
  return html`<section class="panel attention" aria-labelledby="failing-title">
    <h2 id="failing-title">Needs attention <span class="badge disabled">${total} failing</span></h2>
    <div class="table-wrap">
      <table class="sinks-table" data-testid="failing-sinks">
        <caption class="visually-hidden">Failing sinks of every stream, the first ${sinks.length}</caption>
        <thead><tr><th scope="col">Stream</th>${SINK_HEADERS.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>
        <tbody>
          ${sinks.map(
            (s) => html`<tr key=${s.id} data-sink-id=${s.id} data-status=${s.status} class="failing">
              <td data-label="Stream"><div><strong>${s.streamName || s.streamId}</strong>
                <div class="muted small"><code>${s.streamId}</code></div></div></td>
              <${SinkCells} sink=${s} />
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
  </section>`;
}

function streamName(s) {
  return s.name || s.uid || s.id;
}

function StreamsTable({ page, onNext, onFirst, paged }) {
  return html`<section class="panel" aria-labelledby="streams-title">
    <header class="row spread">
      <h2 id="streams-title">Streams and sinks</h2>
      <span class="row">
        ${paged && html`<button type="button" onClick=${onFirst}>First streams</button>`}
        ${!page.done && html`<button type="button" onClick=${onNext}>Next ${STREAMS_PER_PAGE} streams</button>`}
      </span>
    </header>
    ${!page.data.length
      ? html`<p class="muted">No streams yet.</p>`
      : html`<div class="table-wrap">
          <table class="sinks-table" data-testid="streams-table">
            <caption class="visually-hidden">Every stream of this page and its sinks, failing sinks first</caption>
            <thead><tr><th scope="col">Stream</th>${SINK_HEADERS.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>
            <tbody>
              ${page.data.map((st) => {
                const name = html`<td data-label="Stream" class="stream-cell"><div>
                  <strong>${streamName(st)}</strong>
                  <div class="muted small"><code>${st.id}</code></div></div></td>`;
                if (!st.sinks.length) {
                  return html`<tr key=${st.id} data-stream-id=${st.id}>${name}
                    <td colspan=${SINK_HEADERS.length} class="muted">no sinks</td></tr>`;
                }
                return st.sinks.map(
                  (s) => html`<tr key=${s.id} data-stream-id=${st.id} data-sink-id=${s.id}
                      data-status=${s.status} class=${s.failing ? "failing" : ""}>
                    ${name}<${SinkCells} sink=${s} />
                  </tr>`,
                );
              })}
            </tbody>
          </table>
        </div>`}
  </section>`;
}

function Traces({ traces, error }) {
  const box = useRef(null);
  const drawn = useRef(null);
  const signature = traces ? traces.map((t) => `${t.traceId}:${t.spanCount}:${t.lastSeenMs}`).join() : null;
  useEffect(() => {
    if (!box.current || signature === null || signature === drawn.current) return;
    drawn.current = signature;
    renderWaterfall(box.current, traces.flatMap((t) => t.spans), {
      emptyText: "No traces received yet: point a sink at this server's /v1/traces.",
    });
  }, [signature]);
  return html`<section class="panel" aria-labelledby="traces-title">
    <h2 id="traces-title">Local receiver traces</h2>
    <p class="hint">The newest ${TRACES_SHOWN} traces this server's own OTLP receiver
      (<code>${location.origin}/v1/traces</code>) was sent. Open a span for its attributes.</p>
    ${error && html`<p class="notice error">${error}</p>`}
    <div ref=${box} data-testid="traces"></div>
  </section>`;
}

function App() {
  const [token, setToken] = useState(() => tokenFromFragment(STORAGE_KEY));
  const [denied, setDenied] = useState("");
  const [data, setData] = useState(null);
  const [traces, setTraces] = useState(null);
  const [tracesError, setTracesError] = useState("");
  const [error, setError] = useState("");
  const [updated, setUpdated] = useState(null);
  const [paused, setPaused] = useState(false);
  const [iterator, setIterator] = useState(null);
  const inFlight = useRef(false);

  const signOut = useCallback((reason) => {
    sessionStorage.removeItem(STORAGE_KEY);
    setToken("");
    setData(null);
    setTraces(null);
    setDenied(reason || "");
  }, []);

  const api = useMemo(
    () =>
      createApi({
        token,
        onUnauthorized: (err) => signOut(`The server refused this token: ${err.detail}.`),
      }),
    [token, signOut],
  );

  const refresh = useCallback(async () => {
    if (!token || inFlight.current) return;
    inFlight.current = true;
    try {
      const overview = await api.get("/ops/overview", { limit: STREAMS_PER_PAGE, iterator });
      setData(overview);
      setError("");
      setUpdated(new Date());
      try {
        const list = await api.get("/local/traces", { limit: TRACES_SHOWN });
        setTraces(list.data);
        setTracesError("");
      } catch (err) {
        if (err.status !== 401) setTracesError(`Cannot read the local receiver's traces: ${err.message}`);
      }
    } catch (err) {
      if (err.status !== 401) setError(`Cannot refresh: ${err.message}`);
    } finally {
      inFlight.current = false;
    }
  }, [api, token, iterator]);

  useEffect(() => {
    if (!token) return undefined;
    refresh();
    if (paused) return undefined;
    const timer = setInterval(() => {
      if (!document.hidden) refresh();
    }, POLL_MS);
    return () => clearInterval(timer);
  }, [refresh, token, paused]);

  if (!token) {
    return html`<${Login} reason=${denied} onToken=${(t) => {
      sessionStorage.setItem(STORAGE_KEY, t);
      setDenied("");
      setToken(t);
    }} />`;
  }
  return html`
    <header class="top" role="banner">
      <h1>streamsink console</h1>
      <span class="sub" data-testid="updated">${updated
        ? `updated ${updated.toLocaleTimeString()}${paused ? ", auto-refresh paused" : `, every ${POLL_MS / 1000} s`}`
        : "loading…"}</span>
      <span class="row top-actions">
        <button type="button" aria-pressed=${paused ? "true" : "false"} onClick=${() => setPaused(!paused)}>
          ${paused ? "Resume auto-refresh" : "Pause auto-refresh"}</button>
        <button type="button" onClick=${refresh}>Refresh now</button>
        <button type="button" onClick=${() => signOut("")}>Sign out</button>
      </span>
    </header>
    <main id="main">
      <div aria-live="polite">${error && html`<p class="notice error" role="alert">${error}</p>`}</div>
      ${!data
        ? html`<p class="muted">Checking the token…</p>`
        : html`
          <div class="grid-2 console-top">
            <${Stats} data=${data} />
            <${Charts} series=${data.series} />
          </div>
          <${FailingSinks} sinks=${data.failingSinks} total=${data.totals.failingSinks} />
          <${StreamsTable}
            page=${data.streams}
            paged=${iterator !== null}
            onNext=${() => setIterator(data.streams.iterator)}
            onFirst=${() => setIterator(null)}
          />
          <${Traces} traces=${traces} error=${tracesError} />`}
    </main>`;
}

render(html`<${App} />`, document.getElementById("app"));
