// The attempt log of a sink and the recent events of the stream: newest
// first, paged with the API's iterators ("Older" follows `iterator`, "Newest"
// goes back to the first page), refreshed with the page's poll while on the
// first page.

import { html, useState, useEffect } from "./html.js";
import { seg, when } from "./api.js";

const PAGE = 10;

function usePaged(load, tick) {
  const [stack, setStack] = useState([null]); // iterators of the pages seen
  const [page, setPage] = useState(null);
  const [error, setError] = useState("");
  const iterator = stack[stack.length - 1];
  useEffect(() => {
    if (iterator !== null && page) return; // older pages do not move
    load(iterator)
      .then((p) => { setPage(p); setError(""); })
      .catch((err) => setError(err.message));
  }, [iterator, iterator === null ? tick : 0]);
  return {
    page,
    error,
    first: stack.length === 1,
    older: () => page && !page.done && page.iterator && (setPage(null), setStack([...stack, page.iterator])),
    newest: () => { setPage(null); setStack([null]); },
  };
}

function Pager({ paged, label }) {
  return html`<nav class="row" aria-label=${`${label} pages`}>
    <button type="button" disabled=${paged.first} onClick=${paged.newest}>Newest</button>
    <button type="button" disabled=${!paged.page || paged.page.done} onClick=${paged.older}>Older</button>
  </nav>`;
}

export function Attempts({ api, base, tick, canWrite }) {
  const paged = usePaged((iterator) => api.get(`${base}/attempt`, { limit: PAGE, iterator }), tick);
  const rows = paged.page ? paged.page.data : [];
  const [note, setNote] = useState(null);
  const skipPast = async (eventId) => {
    if (!confirm(`Skip past event ${eventId}? Events up to it will not be delivered to this sink.`)) return;
    try {
      await api.post(`${base}/skip`, { iterator: eventId });
      setNote({ kind: "ok", text: `Skipped: delivery resumes after event ${eventId}.` });
    } catch (err) {
      setNote({ kind: "error", text: `Skip failed: ${err.message}` });
    }
  };
  return html`<section class="panel" aria-labelledby="attempts-title">
    <header class="row spread"><h2 id="attempts-title">Attempt log</h2><${Pager} paged=${paged} label="Attempt log" /></header>
    ${paged.error && html`<p class="notice error" role="alert">${paged.error}</p>`}
    ${note && html`<p class="notice ${note.kind}" role="status">${note.text}</p>`}
    ${paged.page && !rows.length && html`<p class="muted">No delivery attempts yet.</p>`}
    ${rows.length > 0 && html`<div class="table-wrap"><table class="attempts">
      <caption class="visually-hidden">Delivery attempts, newest first</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Outcome</th><th scope="col">HTTP</th>
        <th scope="col">Duration</th><th scope="col">Events</th><th scope="col">Spans sent / rejected</th>
        <th scope="col">Response or error</th><th scope="col">Event ids</th></tr></thead>
      <tbody>${rows.map((a) => html`<tr data-outcome=${a.outcome} data-status=${a.statusText}>
        <td title=${a.timestamp}>${when(a.timestamp)}</td>
        <td><span class="badge ${a.outcome === "success" ? "success" : a.outcome === "retrying" ? "retrying" : "failed"}">${a.outcome}</span></td>
        <td>${a.statusCode ?? ""}</td>
        <td>${a.responseDurationMs} ms</td>
        <td>${a.numEvents}</td>
        <td>${a.spansSent} / ${a.rejectedSpans}</td>
        <td><code>${a.error || a.responseExcerpt || ""}</code></td>
        <td><code>${a.firstEventId || ""}${a.lastEventId && a.lastEventId !== a.firstEventId ? ` … ${a.lastEventId}` : ""}</code>
          ${canWrite && a.outcome !== "success" && a.lastEventId && html` <button type="button" class="small"
            aria-label=${`Skip past event ${a.lastEventId}`} onClick=${() => skipPast(a.lastEventId)}>Skip past</button>`}</td>
      </tr>`)}</tbody>
    </table></div>`}
  </section>`;
}

function payloadText(payload) {
  try {
    return JSON.stringify(JSON.parse(payload));
  } catch {
    return String(payload);
  }
}

export function RecentEvents({ api, streamId, tick }) {
  const paged = usePaged((iterator) => api.get(`/stream/${seg(streamId)}/events/latest`, { limit: PAGE, iterator }), tick);
  const rows = paged.page ? paged.page.data : [];
  return html`<section class="panel" aria-labelledby="events-title">
    <header class="row spread"><h2 id="events-title">Recent events</h2><${Pager} paged=${paged} label="Recent events" /></header>
    ${paged.error && html`<p class="notice error" role="alert">${paged.error}</p>`}
    ${paged.page && !rows.length && html`<p class="muted">The stream has no events yet.</p>`}
    ${rows.length > 0 && html`<div class="table-wrap"><table class="events">
      <caption class="visually-hidden">Events of the stream, newest first</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Event type</th><th scope="col">Payload</th></tr></thead>
      <tbody>${rows.map((e) => html`<tr>
        <td title=${e.timestamp}>${when(e.timestamp)}</td>
        <td><code>${e.eventType}</code></td>
        <td><code class="payload">${payloadText(e.payload).slice(0, 300)}</code></td>
      </tr>`)}</tbody>
    </table></div>`}
  </section>`;
}
