/**
 * HTTP request-log events -> OpenTelemetry HTTP server spans (and client spans
 * for the calls a request made downstream), as OpsCompanion's trace example
 * and any APM view of requests (Grafana Tempo, Jaeger, Honeycomb) read them.
 *
 * Events (see transforms/samples/http-server.events.json):
 *   http.request    {requestId, method, route?, path, query?, scheme?, host?, port?,
 *                    status, userAgent?, clientIp?, error?: {type?, message},
 *                    startTime, endTime}
 *   http.downstream {requestId, callId, method, url, urlTemplate?, status?,
 *                    peerService?, error?: {type?, message}, startTime, endTime}
 *
 * One trace per request (traceIdKey = requestId): a SERVER span named
 * "{method} {route}" (just "{method}" without a route) and, for each downstream call, a CLIENT child named
 * "{method}" (or "{method} {urlTemplate}"). Both current (http.request.method,
 * http.response.status_code, url.path, url.full) and legacy (http.method,
 * http.status_code, http.target, http.url) attribute names are set: readers
 * such as OpsCompanion's example still use the legacy ones.
 * Status (per the HTTP semantic conventions): ERROR for 5xx on the server span
 * and for 4xx/5xx on client spans, or when the event carries an error; unset
 * otherwise. error.type is the error's type, else the status code.
 */
const SERVICE_NAME = "my-web-app"; // change to your service's name
const EMIT_LEGACY_HTTP_ATTRIBUTES = true; // false: only the current semconv names

function errorType(p, failed) {
    if (p.error && p.error.type) return p.error.type;
    if (failed) return p.status === undefined ? "_OTHER" : String(p.status);
    return undefined;
}

function statusOf(p, failed) {
    if (!failed) return undefined;
    return { code: "ERROR", message: p.error ? p.error.message : "" };
}

// scheme://host[:port]/... -> {scheme, host, port}, without a URL class (V8 has none here).
function parseUrl(url) {
    const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#:]+|\[[^\]]+\])(?::(\d+))?/.exec(url || "");
    if (!m) return {};
    const scheme = m[1].toLowerCase();
    const port = m[3] ? Number(m[3]) : scheme === "https" ? 443 : scheme === "http" ? 80 : undefined;
    return { scheme, host: m[2], port };
}

function request(p) {
    const failed = p.status >= 500 || !!p.error;
    const a = {
        "http.request.method": p.method,
        "http.route": p.route,
        "url.path": p.path,
        "url.query": p.query,
        "url.scheme": p.scheme,
        "server.address": p.host,
        "server.port": p.port,
        "http.response.status_code": p.status,
        "user_agent.original": p.userAgent,
        "client.address": p.clientIp,
        "error.type": errorType(p, failed),
    };
    if (EMIT_LEGACY_HTTP_ATTRIBUTES) {
        a["http.method"] = p.method;
        a["http.target"] = p.query && p.path !== undefined ? p.path + "?" + p.query : p.path;
        a["http.status_code"] = p.status;
    }
    return {
        name: p.route ? p.method + " " + p.route : p.method, // never the raw path (cardinality)
        kind: "SERVER",
        startTime: p.startTime,
        endTime: p.endTime,
        traceIdKey: p.requestId,
        spanIdKey: p.requestId,
        attributes: a,
        status: statusOf(p, failed),
    };
}

function downstream(p) {
    const failed = p.status >= 400 || !!p.error;
    const u = parseUrl(p.url);
    const a = {
        "http.request.method": p.method,
        "url.full": p.url,
        "url.template": p.urlTemplate,
        "server.address": u.host,
        "server.port": u.port,
        "http.response.status_code": p.status,
        "peer.service": p.peerService,
        "error.type": errorType(p, failed),
    };
    if (EMIT_LEGACY_HTTP_ATTRIBUTES) {
        a["http.method"] = p.method;
        a["http.url"] = p.url;
        a["http.status_code"] = p.status;
    }
    return {
        name: p.urlTemplate ? p.method + " " + p.urlTemplate : p.method,
        kind: "CLIENT",
        startTime: p.startTime,
        endTime: p.endTime,
        traceIdKey: p.requestId,
        spanIdKey: p.requestId + "/" + p.callId,
        parentSpanIdKey: p.requestId,
        attributes: a,
        status: statusOf(p, failed),
    };
}

function handler(input) {
    const spans = [];
    for (const event of input.events) {
        if (event.eventType === "http.request") spans.push(request(event.payload));
        else if (event.eventType === "http.downstream") spans.push(downstream(event.payload));
    }
    return {
        config: {
            serviceName: SERVICE_NAME,
            scope: { name: "streamsink.http-server", version: "1.0.0" },
        },
        spans,
    };
}
