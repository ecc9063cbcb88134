// Span waterfall: traces as trees of spans with timing bars, kind, status,
// and each span's attributes on click (a button: keyboard and screen-reader
// usable). Plain DOM, no framework: any page can call renderWaterfall.
//
// Input, any of:
//   - OTLP/HTTP JSON ({resourceSpans: [{resource, scopeSpans: [{scope, spans}]}]}),
//     as simulate returns it (kinds as numbers or "SPAN_KIND_*", attributes as
//     KeyValue lists, times as nanosecond strings);
//   - a list of spans in that form or in streamsink's decoded form (kind
//     "CLIENT", attributes as an object), possibly nested under `children`
//     (what GET /api/v1/local/traces returns as `spans`).
//
// Times are unix nanoseconds, past 2**53: give them as decimal strings (OTLP
// JSON's form, and the local traces API's), never as JSON numbers, which
// JSON.parse rounds (1755617092291000001 reads as 1755617092291000064). They
// are kept as BigInt here; only differences (offsets, durations) become Numbers.

const KINDS = ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"];
const STATUS = ["UNSET", "OK", "ERROR"];

function kindName(kind) {
  if (typeof kind === "number") return KINDS[kind] || String(kind);
  return String(kind || "INTERNAL").replace(/^SPAN_KIND_/, "").toUpperCase();
}

function statusName(status) {
  const code = status ? status.code : undefined;
  if (code === undefined || code === null) return "UNSET";
  if (typeof code === "number") return STATUS[code] || String(code);
  return String(code).replace(/^STATUS_CODE_/, "").toUpperCase();
}

function anyValue(v) {
  if (v === null || typeof v !== "object") return v;
  if ("stringValue" in v) return v.stringValue;
  if ("boolValue" in v) return v.boolValue;
  if ("intValue" in v) return String(v.intValue);
  if ("doubleValue" in v) return v.doubleValue;
  if ("bytesValue" in v) return v.bytesValue;
  if ("arrayValue" in v) return ((v.arrayValue && v.arrayValue.values) || []).map(anyValue);
  if ("kvlistValue" in v) return attrs((v.kvlistValue && v.kvlistValue.values) || []);
  return null;
}

function attrs(a) {
  if (!a) return {};
  if (Array.isArray(a)) return Object.fromEntries(a.map((kv) => [kv.key, anyValue(kv.value)]));
  return { ...a };
}

/** A time as BigInt ns: exact from a string or BigInt; a Number is exact only up to 2**53. */
export function nanos(v) {
  try {
    if (typeof v === "bigint") return v;
    return BigInt(typeof v === "number" ? Math.round(v) : String(v || 0).trim() || 0);
  } catch {
    return 0n;
  }
}

function normal(span, resource = {}, scope = null) {
  const attributes = attrs(span.attributes);
  return {
    traceId: span.traceId || "",
    spanId: span.spanId || "",
    parentSpanId: span.parentSpanId || "",
    name: span.name || "(no name)",
    kind: kindName(span.kind),
    start: nanos(span.startTimeUnixNano),
    end: nanos(span.endTimeUnixNano),
    attributes,
    status: { code: statusName(span.status), message: (span.status && span.status.message) || "" },
    events: (span.events || []).map((e) => ({ name: e.name, attributes: attrs(e.attributes) })),
    service: span.serviceName || resource["service.name"] || "",
    scope: span.scope || scope,
  };
}

/** Flat list of normalised spans from any accepted input. */
export function toSpans(input) {
  const out = [];
  if (input && Array.isArray(input.resourceSpans)) {
    for (const rs of input.resourceSpans) {
      const resource = attrs(rs.resource && rs.resource.attributes);
      for (const ss of rs.scopeSpans || []) {
        for (const span of ss.spans || []) out.push(normal(span, resource, ss.scope || null));
      }
    }
    return out;
  }
  const walk = (list) => {
    for (const span of list || []) {
      out.push(normal(span));
      if (Array.isArray(span.children)) walk(span.children);
    }
  };
  walk(Array.isArray(input) ? input : []);
  return out;
}

/** Traces (in order of their first start) of span trees: [{traceId, roots, start, end, count}]. */
export function buildTraces(spans) {
  const byTrace = new Map();
  for (const s of spans) {
    if (!byTrace.has(s.traceId)) byTrace.set(s.traceId, []);
    byTrace.get(s.traceId).push(s);
  }
  const traces = [];
  for (const [traceId, list] of byTrace) {
    list.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    const nodes = new Map(list.map((s) => [s.spanId, { span: s, children: [] }]));
    const roots = [];
    for (const node of nodes.values()) {
      const parent = node.span.parentSpanId && nodes.get(node.span.parentSpanId);
      if (parent && parent !== node && !isAncestor(node, parent)) parent.children.push(node);
      else roots.push(node);
    }
    let start = list[0].start;
    let end = list[0].end;
    for (const s of list) {
      if (s.start < start) start = s.start;
      if (s.end > end) end = s.end;
    }
    traces.push({ traceId, roots, start, end, count: list.length });
  }
  traces.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  return traces;
}

function isAncestor(node, candidate) {
  // a parent cycle: `candidate` already hangs below `node`
  const todo = [...node.children];
  while (todo.length) {
    const n = todo.pop();
    if (n === candidate) return true;
    todo.push(...n.children);
  }
  return false;
}

/** "1.25 s", "340 ms", "12 µs". */
export function duration(ns) {
  const n = Number(ns);
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 1 : 2)} s`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)} ms`;
  if (n >= 1e3) return `${Math.round(n / 1e3)} µs`;
  return `${n} ns`;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

let uid = 0;

function detailTable(span) {
  const rows = [
    ["span id", span.spanId],
    ["parent span id", span.parentSpanId || "(root)"],
    ["trace id", span.traceId],
    ["kind", span.kind],
    ["status", span.status.message ? `${span.status.code}: ${span.status.message}` : span.status.code],
    ["service", span.service],
    ["start (unix ns)", span.start.toString()],
    ["end (unix ns)", span.end.toString()],
    ["duration", duration(span.end - span.start)],
  ];
  for (const [k, v] of Object.entries(span.attributes)) {
    rows.push([k, typeof v === "string" ? v : JSON.stringify(v)]);
  }
  for (const e of span.events) rows.push([`event`, `${e.name} ${JSON.stringify(e.attributes)}`]);
  return el(
    "table",
    { class: "wf-attrs" },
    el("caption", { text: `Attributes of ${span.name}` }),
    el(
      "tbody",
      {},
      rows.map(([k, v]) => el("tr", {}, el("th", { scope: "row", text: k }), el("td", { text: v }))),
    ),
  );
}

function row(node, depth, trace, total) {
  const s = node.span;
  const id = `wf-${++uid}`;
  const offset = Number(s.start - trace.start);
  const span = Number(s.end - s.start);
  const bar = el("span", { class: `wf-bar kind-${s.kind.toLowerCase()} status-${s.status.code.toLowerCase()}` });
  bar.style.setProperty("--left", `${total ? (offset / total) * 100 : 0}%`);
  bar.style.setProperty("--width", `${total ? Math.max((span / total) * 100, 0.5) : 100}%`);
  const detail = el("div", { class: "wf-detail", id, hidden: true });
  const button = el(
    "button",
    {
      type: "button",
      class: "wf-row",
      "aria-expanded": "false",
      "aria-controls": id,
      onclick: () => {
        const open = button.getAttribute("aria-expanded") !== "true";
        button.setAttribute("aria-expanded", String(open));
        if (open && !detail.firstChild) detail.append(detailTable(s));
        detail.hidden = !open;
      },
    },
    el("span", { class: "wf-name", text: s.name }),
    el("span", { class: "wf-kind", text: s.kind }),
    s.status.code !== "UNSET"
      ? el("span", { class: `wf-status status-${s.status.code.toLowerCase()}`, text: s.status.code })
      : el("span", { class: "wf-status" }), // keeps the grid's columns: the bar in its track
    el("span", { class: "wf-dur", text: duration(span) }),
    el("span", { class: "wf-track", "aria-hidden": "true" }, bar),
  );
  button.style.setProperty("--depth", String(depth - 1));
  const li = el(
    "li",
    { class: "wf-span", "data-span-name": s.name, "data-span-id": s.spanId, "data-depth": depth, "data-kind": s.kind },
    button,
    detail,
  );
  if (node.children.length) {
    li.append(el("ul", { class: "wf-children" }, node.children.map((c) => row(c, depth + 1, trace, total))));
  }
  return li;
}

/**
 * Render `input` (see the file's header) into `container`, replacing what it
 * held. Returns the traces it drew. `emptyText` is shown when there are none.
 */
export function renderWaterfall(container, input, { emptyText = "No spans." } = {}) {
  const traces = buildTraces(toSpans(input));
  container.replaceChildren();
  container.classList.add("waterfall");
  if (!traces.length) {
    container.append(el("p", { class: "wf-empty", text: emptyText }));
    return traces;
  }
  for (const trace of traces) {
    const total = Number(trace.end - trace.start);
    const service = [...new Set(trace.roots.map((r) => r.span.service).filter(Boolean))].join(", ");
    const rootName = trace.roots[0] ? trace.roots[0].span.name : "";
    const label = `Trace ${trace.traceId.slice(0, 8)}: ${rootName}, ${trace.count} span${trace.count === 1 ? "" : "s"}, ${duration(total)}`;
    container.append(
      el(
        "section",
        { class: "wf-trace", "data-trace-id": trace.traceId, "aria-label": label },
        el(
          "h4",
          { class: "wf-head" },
          el("code", { text: trace.traceId.slice(0, 16), title: trace.traceId }),
          el("span", { text: ` ${rootName} · ${trace.count} span${trace.count === 1 ? "" : "s"} · ${duration(total)}${service ? ` · ${service}` : ""}` }),
        ),
        el("ul", { class: "wf-tree" }, trace.roots.map((r) => row(r, 1, trace, total))),
      ),
    );
  }
  return traces;
}
