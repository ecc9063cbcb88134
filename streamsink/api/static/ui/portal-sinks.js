// Sinks: the list with status badges, one sink's detail and actions, and the
// create / edit form for each sink type (otelTracing, http, poller). Without
// `canWrite` (a read-only portal token) no control that writes is rendered.

import { html, useState, useEffect } from "./html.js";
import { seg, when } from "./api.js";
import { TransformEditor } from "./portal-transform.js";
import { Attempts } from "./portal-logs.js";

const TYPES = {
  otelTracing: "OpenTelemetry traces (OTLP/HTTP)",
  http: "HTTP webhook (signed)",
  poller: "Poller (the consumer pulls events)",
};
const WINDOW_MS = 5 * 60 * 1000;

export function Badge({ status }) {
  return html`<span class="badge ${status}" data-testid="status-badge">${status}</span>`;
}

/** Last delivery and the last 5 minutes' totals from a sink's newest successful
 * attempts (`?status=0`, up to 100: "at least" when all of them are that recent). */
function activity(attempts) {
  if (!attempts) return null;
  const ok = attempts.filter((a) => a.statusText === "success");
  const since = Date.now() - WINDOW_MS;
  const recent = ok.filter((a) => Date.parse(a.timestamp) >= since);
  return {
    last: ok[0] ? ok[0].timestamp : null,
    atLeast: recent.length >= 100 ? "at least " : "",
    events: recent.reduce((n, a) => n + (a.numEvents || 0), 0),
    spans: recent.reduce((n, a) => n + (a.spansSent || 0), 0),
  };
}

export function SinkList({ sinks, attempts, selected, onSelect }) {
  if (!sinks.length) return html`<p class="muted">No sinks yet.</p>`;
  return html`<ul class="sink-list" role="list">
    ${sinks.map((k) => {
      const act = activity(attempts[k.id]);
      return html`<li class="sink-card" aria-current=${k.id === selected ? "true" : "false"} data-sink-id=${k.id}>
        <div class="row spread">
          <button type="button" class="link" onClick=${() => onSelect(k.id)}
            aria-label=${`Open sink ${k.uid || k.id}`}>
            <strong>${k.uid || k.id}</strong>
          </button>
          <span class="row">
            <span class="badge type">${k.type}</span>
            <${Badge} status=${k.status} />
          </span>
        </div>
        <dl>
          ${k.config && k.config.url && html`<dt>URL</dt><dd><code>${k.config.url}</code></dd>`}
          ${k.failureReason && html`<dt>Failure</dt><dd class="failure-reason">${k.failureReason}</dd>`}
          ${k.nextRetryAt && html`<dt>Next retry</dt><dd class="next-retry">${when(k.nextRetryAt, Date.now(), { due: true })}
            <span class="muted"> (${k.nextRetryAt})</span></dd>`}
          ${act && html`<dt>Last delivery</dt><dd class="last-delivery">${act.last ? when(act.last) : "none yet"}</dd>
            <dt>Last 5 min</dt><dd class="throughput">${act.atLeast}${act.events} events, ${act.spans} spans sent</dd>`}
        </dl>
      </li>`;
    })}
  </ul>`;
}

function Actions({ api, base, streamId, sink, canWrite, onChanged }) {
  const [note, setNote] = useState(null);
  const [skipTo, setSkipTo] = useState("");
  const act = async (what, fn) => {
    setNote({ kind: "info", text: `${what}…` });
    try {
      const text = await fn();
      setNote({ kind: "ok", text: text || `${what}: done.` });
      onChanged();
    } catch (err) {
      setNote({ kind: "error", text: `${what} failed: ${err.message}` });
    }
  };
  const enabled = sink.status !== "disabled";
  if (!canWrite) {
    // reads only: an http sink's signing secret (GET .../secret) is open to every portal token
    if (sink.type !== "http") return null;
    return html`<div class="actions">
      <div class="row"><button type="button" onClick=${() =>
        act("Signing secret", async () => `Signing secret: ${(await api.get(`${base}/secret`)).key}`)}>Show secret</button></div>
      ${note && html`<p class="notice ${note.kind}" role="status">${note.text}</p>`}
    </div>`;
  }
  return html`<div class="actions">
    <div class="row">
      ${enabled
        ? html`<button type="button" onClick=${() => act("Disable", () => api.patch(base, { status: "disabled" }))}>Disable</button>`
        : html`<button type="button" onClick=${() => act("Enable", () => api.patch(base, { status: "enabled" }))}>Enable</button>`}
      ${sink.type !== "poller" &&
      html`<button type="button" onClick=${() => act("Force retry", () => api.post(`${base}/force-retry`))}>Force retry</button>`}
      ${sink.type === "http" &&
      html`<button type="button" onClick=${() =>
        act("Signing secret", async () => `Signing secret: ${(await api.get(`${base}/secret`)).key}`)}>Show secret</button>`}
      ${sink.type === "http" &&
      html`<button type="button" onClick=${() =>
        act("Rotate secret", async () => {
          await api.post(`${base}/secret/rotate`, {});
          const s = await api.get(`${base}/secret`);
          return `New signing secret: ${s.key} (the old one keeps signing beside it for 24 h)`;
        })}>Rotate secret</button>`}
      ${sink.type === "poller" &&
      html`<button type="button" onClick=${() =>
        act("Poller token", async () => {
          const t = await api.get(`/auth/stream/${seg(streamId)}/sink/${seg(sink.id)}/poller/token`);
          return `Poller token (reads this sink only, GET ${base}/events): ${t.token || JSON.stringify(t)}`;
        })}>Show poller token</button>`}
    </div>
    <form class="row skip-form" onSubmit=${(e) => {
      e.preventDefault();
      act("Skip", async () => {
        await api.post(`${base}/skip`, { iterator: skipTo.trim() });
        return `Skipped: delivery resumes after event ${skipTo.trim()}.`;
      });
    }}>
      <label for="skip-to" class="visually-hidden">Event id to skip past</label>
      <input id="skip-to" type="text" placeholder="event id to skip past (from the attempt log)"
        value=${skipTo} onInput=${(e) => setSkipTo(e.currentTarget.value)} />
      <button type="submit" disabled=${!skipTo.trim()}>Skip past event</button>
    </form>
    ${note && html`<p class="notice ${note.kind}" role="status">${note.text}</p>`}
  </div>`;
}

export function SinkDetail({ api, streamId, sink, tick, canWrite, onChanged, onDeleted }) {
  const base = `/stream/${seg(streamId)}/sink/${seg(sink.id)}`;
  const [editing, setEditing] = useState(false);
  return html`<section class="panel sink-detail" aria-labelledby="sink-title" data-sink-id=${sink.id}>
      <header class="row spread">
        <h2 id="sink-title">Sink ${sink.uid || sink.id}</h2>
        <span class="row"><span class="badge type">${sink.type}</span><${Badge} status=${sink.status} /></span>
      </header>
      ${sink.failureReason && html`<p class="notice error">Failure: ${sink.failureReason}</p>`}
      ${sink.nextRetryAt && html`<p class="notice info">Next retry: ${when(sink.nextRetryAt, Date.now(), { due: true })}.</p>`}
      <${Actions} api=${api} base=${base} streamId=${streamId} sink=${sink} canWrite=${canWrite} onChanged=${onChanged} />
      <h3>Settings</h3>
      ${editing && canWrite
        ? html`<${SinkForm} api=${api} streamId=${streamId} sink=${sink}
            onCancel=${() => setEditing(false)} onSaved=${() => { setEditing(false); onChanged(); }} />`
        : html`<div class="row">
            <span class="muted">batch ${sink.batchSize}, wait ${sink.maxWaitSecs} s, events:
              ${sink.eventTypes && sink.eventTypes.length ? sink.eventTypes.join(", ") : "all"}</span>
            ${canWrite && html`<button type="button" onClick=${() => setEditing(true)}>Edit settings</button>
            <button type="button" class="danger" onClick=${async () => {
              if (!confirm(`Delete sink ${sink.uid || sink.id}?`)) return;
              await api.del(base);
              onDeleted();
            }}>Delete</button>`}
          </div>`}
    </section>
    ${sink.type !== "poller" && html`<${TransformEditor} api=${api} streamId=${streamId} sink=${sink} tick=${tick} canWrite=${canWrite} />`}
    <${Attempts} api=${api} base=${base} tick=${tick} canWrite=${canWrite} />`;
}

function HeaderRows({ rows, setRows, sensitive }) {
  const update = (i, field, value) => setRows(rows.map((r, j) => (j === i ? { ...r, [field]: value } : r)));
  return html`<fieldset>
    <legend>Headers</legend>
    ${rows.map((r, i) => html`<div class="row header-row">
      <label class="visually-hidden" for=${`hname-${i}`}>Header ${i + 1} name</label>
      <input id=${`hname-${i}`} type="text" placeholder="name" value=${r.name}
        onInput=${(e) => update(i, "name", e.currentTarget.value)} />
      <label class="visually-hidden" for=${`hvalue-${i}`}>Header ${i + 1} value</label>
      <input id=${`hvalue-${i}`} type="text" value=${r.value}
        placeholder=${r.redacted ? "sensitive: unchanged unless you type a new value" : "value"}
        onInput=${(e) => update(i, "value", e.currentTarget.value)} />
      <button type="button" aria-label=${`Remove header ${r.name || i + 1}`}
        onClick=${() => setRows(rows.filter((_, j) => j !== i))}>Remove</button>
    </div>`)}
    <button type="button" onClick=${() => setRows([...rows, { name: "", value: "", original: null }])}>Add header</button>
    ${sensitive.length > 0 && html`<p class="hint">Sensitive values (${sensitive.join(", ")}) are never shown.</p>`}
  </fieldset>`;
}

function headerRowsOf(sink) {
  const h = sink && sink.config && sink.config.headers;
  const headers = (h && (h.headers || h)) || {};
  const sensitive = (h && h.sensitive) || [];
  return Object.entries(headers).map(([name, value]) => {
    const redacted = sensitive.includes(name) || sensitive.includes(name.toLowerCase());
    return { name, value: redacted ? "" : value, original: name, redacted };
  });
}

export function SinkForm({ api, streamId, sink = null, onSaved, onCancel }) {
  const cfg = (sink && sink.config) || {};
  const [type, setType] = useState(sink ? sink.type : "otelTracing");
  const [uid, setUid] = useState((sink && sink.uid) || "");
  const [url, setUrl] = useState(cfg.url || "");
  const [encoding, setEncoding] = useState(cfg.encoding || "auto");
  const [compression, setCompression] = useState(cfg.compression || "none");
  const [key, setKey] = useState("");
  const [batchSize, setBatchSize] = useState(sink ? sink.batchSize : 100);
  const [maxWaitSecs, setMaxWaitSecs] = useState(sink ? sink.maxWaitSecs : 0);
  const [chosen, setChosen] = useState((sink && sink.eventTypes) || []);
  const [known, setKnown] = useState([]);
  const [rows, setRows] = useState(() => headerRowsOf(sink));
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const sensitive = rows.filter((r) => r.redacted).map((r) => r.name);

  useEffect(() => {
    (async () => {
      const names = new Set(chosen);
      try {
        for (const t of (await api.get("/stream/event-type", { limit: 250 })).data) if (!t.archived) names.add(t.name);
      } catch {
        /* a portal token may not list event types: the recent events still name them */
      }
      try {
        for (const e of (await api.get(`/stream/${seg(streamId)}/events/latest`, { limit: 100 })).data) names.add(e.eventType);
      } catch {
        /* shown elsewhere */
      }
      setKnown([...names].sort());
    })();
  }, []);

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    const headers = {};
    for (const r of rows) if (r.name.trim() && (r.value !== "" || !r.redacted)) headers[r.name.trim()] = r.value;
    const config = {};
    if (type !== "poller") config.url = url.trim();
    if (type === "otelTracing") Object.assign(config, { encoding, compression });
    if (type === "http" && key.trim()) config.key = key.trim();
    const fields = {
      batchSize: Number(batchSize),
      maxWaitSecs: Number(maxWaitSecs),
      eventTypes: chosen.length ? chosen : null,
    };
    try {
      let saved;
      if (!sink) {
        if (type !== "poller" && Object.keys(headers).length) config.headers = headers;
        saved = await api.post(`/stream/${seg(streamId)}/sink`, { type, config, uid: uid.trim() || undefined, ...fields });
      } else {
        const base = `/stream/${seg(streamId)}/sink/${seg(sink.id)}`;
        saved = await api.patch(base, { ...(type === "poller" ? {} : { config }), uid: uid.trim() || null, ...fields });
        if (type !== "poller") {
          const patch = { ...headers };
          for (const r of headerRowsOf(sink)) if (!rows.some((x) => x.name.trim() === r.name)) patch[r.name] = null;
          if (Object.keys(patch).length) await api.patch(`${base}/headers`, { headers: patch });
        }
      }
      onSaved(saved);
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };

  return html`<form class="sink-form" onSubmit=${submit} aria-describedby="sink-form-error">
    <div class="form-grid">
      <div>
        <label for="sink-type">Type</label>
        <select id="sink-type" value=${type} disabled=${!!sink} onChange=${(e) => setType(e.currentTarget.value)}>
          ${Object.entries(TYPES).map(([v, text]) => html`<option value=${v}>${text}</option>`)}
        </select>
      </div>
      <div>
        <label for="sink-uid">UID <span class="hint">(optional)</span></label>
        <input id="sink-uid" type="text" value=${uid} onInput=${(e) => setUid(e.currentTarget.value)} />
      </div>
    </div>
    ${type !== "poller" && html`<label for="sink-url">URL</label>
      <input id="sink-url" type="url" required value=${url} placeholder=${type === "otelTracing" ? "https://collector.example.com/v1/traces" : "https://example.com/webhook"}
        onInput=${(e) => setUrl(e.currentTarget.value)} />`}
    ${type === "otelTracing" && html`<div class="form-grid">
      <div><label for="sink-encoding">Encoding</label>
        <select id="sink-encoding" value=${encoding} onChange=${(e) => setEncoding(e.currentTarget.value)}>
          <option value="auto">auto (JSON, switches on 415)</option><option value="json">json</option><option value="protobuf">protobuf</option>
        </select></div>
      <div><label for="sink-compression">Compression</label>
        <select id="sink-compression" value=${compression} onChange=${(e) => setCompression(e.currentTarget.value)}>
          <option value="none">none</option><option value="gzip">gzip</option>
        </select></div>
    </div>`}
    ${type === "http" && html`<label for="sink-key">Signing secret <span class="hint">(optional whsec_…; generated when empty${sink ? ", unchanged when empty" : ""})</span></label>
      <input id="sink-key" type="text" value=${key} autocomplete="off" onInput=${(e) => setKey(e.currentTarget.value)} />`}
    ${type !== "poller" && html`<${HeaderRows} rows=${rows} setRows=${setRows} sensitive=${sensitive} />`}
    <div class="form-grid">
      <div><label for="sink-batch">Batch size <span class="hint">(1–1000)</span></label>
        <input id="sink-batch" type="number" min="1" max="1000" value=${batchSize} onInput=${(e) => setBatchSize(e.currentTarget.value)} /></div>
      <div><label for="sink-wait">Max wait (s) <span class="hint">(0–300)</span></label>
        <input id="sink-wait" type="number" min="0" max="300" value=${maxWaitSecs} onInput=${(e) => setMaxWaitSecs(e.currentTarget.value)} /></div>
    </div>
    <fieldset>
      <legend>Event types <span class="hint">(none chosen: all)</span></legend>
      <div class="checks">
        ${known.length === 0 && html`<span class="muted">The stream has no event types yet.</span>`}
        ${known.map((name) => html`<label><input type="checkbox" checked=${chosen.includes(name)}
          onChange=${(e) => setChosen(e.currentTarget.checked ? [...chosen, name] : chosen.filter((n) => n !== name))} /> ${name}</label>`)}
      </div>
    </fieldset>
    <p id="sink-form-error" class=${error ? "notice error" : ""} role=${error ? "alert" : undefined}>${error}</p>
    <div class="row">
      <button type="submit" class="primary" disabled=${busy}>${sink ? "Save settings" : "Create sink"}</button>
      <button type="button" onClick=${onCancel}>Cancel</button>
    </div>
  </form>`;
}
