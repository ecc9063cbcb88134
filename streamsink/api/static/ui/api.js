// The REST API from the browser: a fetch wrapper that sends the bearer token
// and turns error answers ({code, detail}, or FastAPI's 422 list) into an
// ApiError whose message is fit to show the user.
//
// The token comes from the URL fragment (#key=...), which browsers never send
// to a server: it is moved to sessionStorage (this tab only) and removed from
// the address bar, so it does not linger in history or get copied along.

export class ApiError extends Error {
  constructor(status, code, detail, body) {
    super(`${detail}${code ? ` (${code}, HTTP ${status})` : ` (HTTP ${status})`}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.body = body;
  }
}

/** The text of a FastAPI 422 detail list, one `field: message` per item. */
function validationText(items) {
  return items
    .map((item) => {
      const loc = (item.loc || []).filter((p) => p !== "body").join(".");
      return loc ? `${loc}: ${item.msg}` : item.msg;
    })
    .join("; ");
}

/** Read `#key=` from the fragment into sessionStorage[storageKey], clean the
 * address bar, and return the token (the stored one when the fragment has none). */
export function tokenFromFragment(storageKey) {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const key = params.get("key");
  if (key) {
    sessionStorage.setItem(storageKey, key);
    params.delete("key");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  }
  return sessionStorage.getItem(storageKey) || "";
}

/**
 * A client of `/api/v1`: `api.get(path, query)`, `api.post(path, body)`,
 * `api.patch`, `api.put`, `api.del`. Resolves to the parsed JSON (null for
 * an empty answer); rejects with an ApiError. `onUnauthorized(err)` is called
 * on 401 (expired or logged-out token) before the rejection.
 */
export function createApi({ token, base = "/api/v1", onUnauthorized = null, timeoutMs = 30000 }) {
  async function request(method, path, { body, query } = {}) {
    const url = new URL(base + path, location.origin);
    for (const [k, v] of Object.entries(query || {})) {
      if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
    }
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
        credentials: "omit",
        cache: "no-store",
      });
    } catch (err) {
      const why = err.name === "AbortError" ? `no answer within ${timeoutMs / 1000} s` : err.message;
      throw new ApiError(0, "network", `cannot reach the server: ${why}`, null);
    } finally {
      clearTimeout(timer);
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      let code = data && typeof data.code === "string" ? data.code : "";
      let detail = response.statusText || "request failed";
      if (data && typeof data.detail === "string") detail = data.detail;
      else if (data && Array.isArray(data.detail)) {
        detail = validationText(data.detail);
        code = code || "validation";
      }
      const err = new ApiError(response.status, code, detail, data);
      if (response.status === 401 && onUnauthorized) onUnauthorized(err);
      throw err;
    }
    return data;
  }
  return {
    request,
    get: (path, query) => request("GET", path, { query }),
    post: (path, body, query) => request("POST", path, { body, query }),
    put: (path, body) => request("PUT", path, { body }),
    patch: (path, body) => request("PATCH", path, { body }),
    del: (path, query) => request("DELETE", path, { query }),
  };
}

/** `encodeURIComponent` for path segments. */
export const seg = (s) => encodeURIComponent(String(s));

/** Short human text of an ISO time: relative when recent ("12 s ago", "in 3 s");
 * with `due`, a time already past reads "due now" (a retry being made). */
export function when(iso, now = Date.now(), { due = false } = {}) {
  if (!iso) return "";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso);
  const secs = Math.round((t - now) / 1000);
  if (due && secs <= 0) return "due now";
  const abs = Math.abs(secs);
  let text;
  if (abs < 60) text = `${abs} s`;
  else if (abs < 3600) text = `${Math.round(abs / 60)} min`;
  else if (abs < 86400) text = `${Math.round(abs / 3600)} h`;
  else return new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  return secs <= 0 ? `${text} ago` : `in ${text}`;
}
