// The API client: JSON in, JSON or RFC 9457 problems out. Paths are
// relative, so the page also works behind a proxy that mounts it under a
// prefix. The bearer token is sent in the Authorization header only.

/** ApiError is a failed request: an HTTP problem, or status 0 for a network failure. */
export class ApiError extends Error {
  constructor(status, problem, retryAfter, requestId) {
    super(problem?.detail || (status ? `HTTP ${status}` : "network error"));
    this.name = "ApiError";
    this.status = status;
    this.problem = problem || {};
    /** Seconds to wait before retrying, from Retry-After, or null. */
    this.retryAfter = retryAfter;
    this.requestId = requestId || this.problem.request_id || "";
  }

  /** kind is the last segment of the problem type ("rate-limited", "validation-failed", …). */
  get kind() {
    const t = this.problem.type || "";
    return t.slice(t.lastIndexOf("/") + 1);
  }

  /** fields are the invalid request fields named by a validation problem. */
  get fields() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }

  static async from(res) {
    let problem = null;
    const type = res.headers.get("Content-Type") || "";
    if (type.includes("json")) {
      try {
        problem = await res.json();
      } catch {
        problem = null;
      }
    }
    return new ApiError(res.status, problem, retryAfterSeconds(res.headers.get("Retry-After")), res.headers.get("X-Request-ID"));
  }
}

/**
 * retryAfterSeconds reads a Retry-After value (delay seconds or an HTTP
 * date) as whole seconds, or null when absent or unreadable.
 */
export function retryAfterSeconds(value, now = Date.now()) {
  if (value == null) return null;
  const v = String(value).trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/**
 * request sends method path with an optional JSON body and bearer token.
 * It resolves to {status, headers, data} for a 2xx answer and rejects with
 * an ApiError otherwise (an AbortError passes through).
 */
export async function request(method, path, { token, body, headers = {}, signal } = {}) {
  const h = { Accept: "application/json, application/problem+json", ...headers };
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (token) h.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      signal,
    });
  } catch (err) {
    if (err?.name === "AbortError") throw err;
    throw new ApiError(0, null, null, "");
  }
  if (!res.ok) throw await ApiError.from(res);
  const data = res.status === 204 ? null : await res.json();
  return { status: res.status, headers: res.headers, data };
}

/** newIdempotencyKey returns 128 random bits as hex (works without a secure context). */
export function newIdempotencyKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function seconds(n) {
  return n === 1 ? "1 second" : `${n} seconds`;
}

/**
 * describe turns an error into a sentence for people. context is "login",
 * "order", "status" or "read", which changes the wording where it matters.
 */
export function describe(err, context = "read") {
  if (!(err instanceof ApiError)) {
    return "Something unexpected went wrong in this page. Reload it and try again.";
  }
  const wait = err.retryAfter ?? waitFromDetail(err.problem.detail);
  switch (err.status) {
    case 0:
      return "Could not reach the server. Check your connection and try again.";
    case 401:
      if (context === "login") return "Unknown user id or wrong password.";
      return "Your session has expired or is no longer valid. Please log in again.";
    case 403:
      return "This order's status link has expired or is invalid. Open the order from your recent orders to see where it stands.";
    case 404:
      return "That order was not found. It may belong to another account.";
    case 409:
      return "This order is still being submitted. Wait a moment, then check your recent orders.";
    case 413:
      return "The order is too large. Remove some items and try again.";
    case 422:
      if (err.kind === "idempotency-key-reused") {
        return "This submission was already used for a different order. Place the order again.";
      }
      return `Please check the ${fieldLabel(err.fields[0]?.field)}: ${sentence(withoutField(err.problem.detail, err.fields[0]?.field))}`;
    case 429: {
      const what = context === "login" ? "Too many login attempts" : "Too many orders in a short time";
      const when = wait != null ? ` You can try again in ${seconds(Math.max(1, wait))}.` : " Wait a moment and try again.";
      return `${what}.${when}`;
    }
    case 503: {
      const when = wait != null ? ` Try again in ${seconds(Math.max(1, wait))}.` : " Try again shortly.";
      return `The service is briefly unavailable.${when}`;
    }
  }
  if (err.status >= 500) {
    const quote = err.requestId ? ` If it keeps happening, quote request id ${err.requestId} to support.` : "";
    return `Something went wrong on our side. Try again later.${quote}`;
  }
  return sentence(err.problem.detail) || `The request was refused (HTTP ${err.status}).`;
}

/** fieldLabel names an API field the way the form labels it. */
export function fieldLabel(field) {
  if (!field) return "order";
  const item = /^items\[(\d+)\]\.(sku|quantity)$/.exec(field);
  if (item) return `${item[2] === "sku" ? "SKU" : "quantity"} of item ${Number(item[1]) + 1}`;
  switch (field) {
    case "amount":
      return "amount";
    case "currency":
      return "currency";
    case "items":
      return "items";
    case "user_id":
      return "user id";
  }
  return field.replaceAll("_", " ");
}

/** withoutField drops the field name a detail starts with ("amount must be …" → "it must be …"). */
function withoutField(detail, field) {
  if (!detail || !field || !detail.startsWith(`${field} `)) return detail;
  const rest = detail.slice(field.length + 1);
  return /^(must|is|has)\b/.test(rest) ? `it ${rest}` : rest;
}

function sentence(s) {
  if (!s) return "";
  const t = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

function waitFromDetail(detail) {
  const m = /retry in (\d+) s/.exec(detail || "");
  return m ? Number(m[1]) : null;
}
