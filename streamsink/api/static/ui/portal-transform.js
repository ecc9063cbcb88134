// The transformation editor: CodeMirror with JavaScript highlighting; each
// edit is checked through POST /stream/transformations/simulate (the page
// cannot compile code itself under its CSP, and the server's V8 is the one
// that will run it), errors are marked at the line and column the API
// reports, and the result is shown as a span waterfall beside the raw OTLP.
// Saving (PATCH .../transformation) is offered only for code that compiles.

import { html, useState, useEffect, useRef } from "./html.js";
import { seg } from "./api.js";
import { createEditor } from "./editor.js";
import { renderWaterfall } from "./waterfall.js";

const CHECK_DELAY_MS = 500;

function Waterfall({ otlp }) {
  const ref = useRef(null);
  useEffect(() => {
    if (ref.current) renderWaterfall(ref.current, otlp || {}, { emptyText: "The handler made no spans." });
  }, [otlp]);
  return html`<div ref=${ref} class="waterfall" data-testid="waterfall"></div>`;
}

/** An http sink's request as text: request line, headers, blank line, body. */
function requestText(req) {
  const headers = Object.entries(req.headers || {}).map(([k, v]) => `${k}: ${v}`);
  const body = typeof req.body === "string" ? req.body : JSON.stringify(req.body, null, 2);
  return [`${req.method || "POST"} ${req.url || ""}`, ...headers, "", body || ""].join("\n");
}

function parsePasted(text) {
  const data = JSON.parse(text);
  const list = Array.isArray(data) ? data : data.events;
  if (!Array.isArray(list) || !list.length) throw new Error("paste a JSON list of {eventType, payload}");
  return list.map((e, i) => {
    if (!e || typeof e.eventType !== "string") throw new Error(`event ${i}: eventType (a string) is required`);
    return { eventType: e.eventType, payload: e.payload === undefined ? {} : e.payload };
  });
}

export function TransformEditor({ api, streamId, sink, tick, canWrite }) {
  const base = `/stream/${seg(streamId)}/sink/${seg(sink.id)}`;
  const host = useRef(null);
  const editor = useRef(null);
  const timer = useRef(0);
  const seq = useRef(0);
  const [templates, setTemplates] = useState([]);
  const [saved, setSaved] = useState(null); // the stored code (null: the default handler)
  const [source, setSource] = useState("recent"); // recent | template | pasted
  const [recent, setRecent] = useState([]);
  const [templateEvents, setTemplateEvents] = useState([]);
  const [pasted, setPasted] = useState("");
  const [check, setCheck] = useState({ state: "idle" });
  const [note, setNote] = useState(null);
  const [code, setCode] = useState(null);

  // the events the preview runs on
  const events = () => {
    if (source === "pasted") return parsePasted(pasted);
    if (source === "recent" && recent.length) return recent;
    if (templateEvents.length) return templateEvents;
    return recent;
  };

  useEffect(() => {
    (async () => {
      let stored = null;
      try {
        stored = (await api.get(`${base}/transformation`)).code || null;
      } catch (err) {
        setNote({ kind: "error", text: `Cannot read the transformation: ${err.message}` });
      }
      let list = [];
      try {
        list = (await api.get(`/stream/${seg(streamId)}/transformation-templates`)).data;
      } catch {
        /* older servers: no templates */
      }
      const latest = await loadRecent();
      if (!latest.length) setSource("template");
      list = list.filter((t) => (t.sinkType || "otelTracing") === sink.type);
      setTemplates(list);
      // the default this sink type runs without a transformation
      const fallback = list.find((t) => t.name === (sink.type === "http" ? "http-default.js" : "default.js"));
      // the samples of the handler the code came from (else the default's, else any)
      const origin = list.find((t) => t.code === stored) || fallback;
      const samples = (origin && origin.sampleEvents.length ? origin : list.find((t) => t.sampleEvents.length)) || null;
      if (samples) setTemplateEvents(samples.sampleEvents);
      setSaved(stored);
      const start = stored || (fallback ? fallback.code : "function handler(input) {\n  return { spans: [] };\n}\n");
      editor.current = createEditor(host.current, { code: start, onChange: (c) => setCode(c), label: "Transformation code" });
      setCode(start);
    })();
    return () => editor.current && editor.current.destroy();
  }, [sink.id]);

  // the stream's recent events, oldest first; replaced only when they changed
  async function loadRecent() {
    try {
      const latest = (await api.get(`/stream/${seg(streamId)}/events/latest`, { limit: 20 })).data;
      const events = latest.reverse().map((e) => ({ eventType: e.eventType, payload: e.payload }));
      setRecent((old) => (JSON.stringify(old) === JSON.stringify(events) ? old : events));
      return events;
    } catch {
      return []; // shown by the events panel
    }
  }

  useEffect(() => {
    if (code !== null) loadRecent();
  }, [tick]);

  // re-check (compile + preview) shortly after each change
  useEffect(() => {
    if (code === null) return undefined;
    clearTimeout(timer.current);
    timer.current = setTimeout(runCheck, CHECK_DELAY_MS);
    return () => clearTimeout(timer.current);
  }, [code, source, pasted, recent, templateEvents]);

  async function runCheck() {
    const mine = ++seq.current;
    let evs;
    try {
      evs = events();
    } catch (err) {
      setCheck({ state: "events", message: `Pasted events: ${err.message}` });
      return;
    }
    if (!evs.length) {
      setCheck({ state: "noevents" });
      return;
    }
    setCheck((c) => ({ ...c, state: c.state === "idle" ? "checking" : c.state, busy: true }));
    try {
      const body = { type: sink.type, code, events: evs };
      if (sink.type === "http" && sink.config && sink.config.url) body.url = sink.config.url;
      const out = await api.post("/stream/transformations/simulate", body);
      if (mine !== seq.current) return;
      editor.current.setProblems([]);
      setCheck({ state: "ok", otlp: out.otlp || null, http: out.http || null, output: out.output, warnings: out.warnings || [] });
    } catch (err) {
      if (mine !== seq.current) return;
      if (err.status === 429) {
        // the server's handler runs are all busy: check again shortly
        timer.current = setTimeout(runCheck, 1000);
        return;
      }
      const body = err.body || {};
      const compiles = err.code !== "invalid_transformation";
      if (body.line) {
        editor.current.setProblems([{ line: body.line, column: body.column, message: err.detail }]);
      } else {
        editor.current.setProblems([]);
      }
      setCheck({ state: compiles ? "runtime" : "compile", message: err.detail, line: body.line, column: body.column, code: err.code });
    }
  }

  const loadTemplate = (name) => {
    const t = templates.find((x) => x.name === name);
    if (!t) return;
    editor.current.setCode(t.code);
    setTemplateEvents(t.sampleEvents || []);
    if (!recent.length && source !== "pasted") setSource("template");
    setNote({ kind: "info", text: `Loaded ${t.name}. Not saved yet.` });
  };

  const save = async () => {
    try {
      await api.patch(`${base}/transformation`, { code });
      setSaved(code);
      setNote({ kind: "ok", text: "Transformation saved." });
    } catch (err) {
      setNote({ kind: "error", text: `Not saved: ${err.message}` });
    }
  };

  const canSave = check.state !== "compile" && check.state !== "checking" && code !== null && code !== saved;
  const where = check.line ? ` at line ${check.line}${check.column ? `, column ${check.column}` : ""}` : "";
  return html`<section class="panel transform" aria-labelledby="transform-title">
    <header class="row spread">
      <h2 id="transform-title">Transformation</h2>
      <span class="row">
        <label for="template-select" class="visually-hidden">Start from a bundled handler</label>
        <select id="template-select" onChange=${(e) => { loadTemplate(e.currentTarget.value); e.currentTarget.value = ""; }}>
          <option value="">Start from…</option>
          ${templates.map((t) => html`<option value=${t.name} title=${t.description}>${t.name}</option>`)}
        </select>
        ${canWrite && html`<button type="button" class="primary" disabled=${!canSave} onClick=${save}>Save transformation</button>`}
      </span>
    </header>
    ${!canWrite && html`<p class="hint" data-testid="transform-read-only">Read-only access: edits here run in the
      preview only and are never saved.</p>`}
    <p class="hint" id="editor-help">handler(input) receives <code>{events: [{eventType, payload}]}</code>.
      Esc then Tab moves focus out of the editor.</p>
    <div class="grid-2">
      <div>
        <div class="editor" ref=${host} aria-describedby="editor-help compile-status"></div>
        <p id="compile-status" class="compile-status" role="status" data-state=${check.state}>
          ${check.state === "compile" && html`<span class="notice error">Does not compile${where}: ${check.message}</span>`}
          ${check.state === "runtime" && html`<span class="notice error">Compiles, but fails on these events${where}: ${check.message}</span>`}
          ${check.state === "ok" && html`<span class="notice ok">Compiles; preview below.${saved === code ? " Saved." : " Not saved."}</span>`}
          ${check.state === "checking" && html`<span class="muted">Checking…</span>`}
          ${check.state === "noevents" && html`<span class="muted">No events to preview: the stream has none yet; pick sample or pasted events.</span>`}
          ${check.state === "events" && html`<span class="notice error">${check.message}</span>`}
        </p>
        ${check.warnings && check.warnings.length > 0 && html`<ul class="hint">${check.warnings.map((w) => html`<li>${w}</li>`)}</ul>`}
        <fieldset>
          <legend>Preview events</legend>
          <div class="checks" role="radiogroup">
            <label><input type="radio" name="evsrc" checked=${source === "recent"} onChange=${() => setSource("recent")} /> recent events of the stream (${recent.length})</label>
            <label><input type="radio" name="evsrc" checked=${source === "template"} onChange=${() => setSource("template")} /> the handler's sample events (${templateEvents.length})</label>
            <label><input type="radio" name="evsrc" checked=${source === "pasted"} onChange=${() => setSource("pasted")} /> pasted events</label>
          </div>
          ${source === "pasted" && html`<label for="pasted-events">Events (JSON list of {eventType, payload})</label>
            <textarea id="pasted-events" value=${pasted} onInput=${(e) => setPasted(e.currentTarget.value)}></textarea>`}
        </fieldset>
        ${note && html`<p class="notice ${note.kind}" role="status">${note.text}</p>`}
      </div>
      <div>
        <h3>Preview: ${sink.type === "http" ? "the request" : "spans"}</h3>
        ${check.state !== "ok" && html`<p class="muted">The preview shows here once the handler runs.</p>`}
        ${check.state === "ok" && check.otlp && html`<${Waterfall} otlp=${check.otlp} />`}
        ${check.state === "ok" && check.http && html`<pre class="raw" data-testid="http-request">${requestText(check.http)}</pre>`}
        <details open>
          <summary>Raw ${check.otlp ? "OTLP/HTTP JSON" : "handler output"}</summary>
          <pre class="raw" data-testid="raw-otlp">${check.state === "ok" ? JSON.stringify(check.otlp || check.output, null, 2) : ""}</pre>
        </details>
      </div>
    </div>
  </section>`;
}
