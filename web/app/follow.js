// Following an order on its signed status URL: by server-sent events
// (EventSource: one request, a status event on every change, closed by the
// server after the terminal status), falling back to polling when the
// stream cannot be had (no EventSource, a refused stream: 429/503, a
// proxy that breaks it). Polling honours Retry-After, sends the last ETag
// as If-None-Match (an unchanged order answers 304 with no body), and
// stops at a terminal status.

import { ApiError, retryAfterSeconds } from "./api.js";

/** TERMINAL are the statuses after which an order never changes. */
export const TERMINAL = new Set(["COMPLETED", "REJECTED", "FAILED", "CANCELLED"]);

// Bounds on the wait between two polls, whatever the server says.
const MIN_WAIT_MS = 250;
const MAX_WAIT_MS = 30_000;
const DEFAULT_WAIT_MS = 1_000;
// Transient failures (network, 429, 5xx) in a row before giving up.
const MAX_FAILURES = 8;

function clampWait(ms) {
  return Math.min(MAX_WAIT_MS, Math.max(MIN_WAIT_MS, ms));
}

/** sleep waits ms milliseconds, or rejects with an AbortError when signal aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DOMException("aborted", "AbortError"));
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    function onAbort() {
      clearTimeout(t);
      reject(new DOMException("aborted", "AbortError"));
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * follow follows statusURL until the order is terminal and resolves to its
 * last status document: by server-sent events, then by polling if the
 * stream fails. onUpdate(doc) is called for every new document; onStream()
 * once the event stream is open; onPoll({waitMs, notModified, failures})
 * after each poll, before waiting.
 * firstWaitMs is the 202's Retry-After. It rejects with an ApiError for an
 * answer that retrying cannot fix (403 expired link, 404), or after
 * MAX_FAILURES transient failures in a row; an abort rejects with AbortError.
 */
export async function follow(statusURL, { onUpdate, onPoll, onStream, signal, firstWaitMs = 0 } = {}) {
  const streamed = await stream(statusURL, { onUpdate, onStream, signal });
  if (streamed.done) return streamed.doc;
  return poll(statusURL, { onUpdate, onPoll, signal, firstWaitMs: streamed.doc ? 0 : firstWaitMs, etag: streamed.etag });
}

/**
 * stream follows statusURL by EventSource. It resolves to {done: true, doc}
 * at a terminal status, or to {done: false, doc, etag} (the last document
 * and its event id, if any) when the stream fails, for polling to go on
 * from there. onStream() is called once the stream is open.
 */
export function stream(statusURL, { onUpdate, onStream, signal } = {}) {
  return new Promise((resolve, reject) => {
    if (typeof EventSource === "undefined") {
      resolve({ done: false });
      return;
    }
    let doc = null;
    let etag = null;
    const es = new EventSource(statusURL);
    const finish = (v) => {
      es.close();
      signal?.removeEventListener("abort", onAbort);
      resolve(v);
    };
    function onAbort() {
      es.close();
      reject(new DOMException("aborted", "AbortError"));
    }
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    es.onopen = () => onStream?.();
    es.addEventListener("status", (ev) => {
      doc = JSON.parse(ev.data);
      etag = ev.lastEventId || null;
      onUpdate?.(doc);
      if (TERMINAL.has(doc.status)) finish({ done: true, doc });
    });
    // The server closes the stream after the terminal status. A stream
    // cut short otherwise is reconnected by the EventSource itself, with
    // Last-Event-ID (readyState CONNECTING); one it gives up on (a refused
    // stream: 403 at the URL's expiry, 429/503 at the caps, a proxy that
    // does not pass text/event-stream) hands over to polling, which
    // reports a 403 and waits out a 429 or 503.
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) finish({ done: false, doc, etag });
    };
  });
}

/** poll follows statusURL by polling; see follow. */
async function poll(statusURL, { onUpdate, onPoll, signal, firstWaitMs = 0, etag = null } = {}) {
  let failures = 0;
  let wait = firstWaitMs;
  for (;;) {
    if (wait > 0) await sleep(wait, signal);
    const headers = { Accept: "application/json" };
    if (etag) headers["If-None-Match"] = etag;
    let res;
    try {
      res = await fetch(statusURL, { headers, cache: "no-store", credentials: "omit", signal });
    } catch (err) {
      if (err?.name === "AbortError") throw err;
      res = null;
    }
    const after = res ? retryAfterSeconds(res.headers.get("Retry-After")) : null;
    const serverWait = after == null ? null : after * 1000;
    if (res && (res.status === 200 || res.status === 304)) {
      failures = 0;
      const notModified = res.status === 304;
      if (!notModified) {
        const doc = await res.json();
        etag = res.headers.get("ETag");
        onUpdate?.(doc);
        if (TERMINAL.has(doc.status)) return doc;
      }
      wait = clampWait(serverWait ?? DEFAULT_WAIT_MS);
      onPoll?.({ waitMs: wait, notModified, failures });
      continue;
    }
    const transient = !res || res.status === 429 || res.status >= 500;
    if (!transient) throw await ApiError.from(res);
    failures++;
    if (failures > MAX_FAILURES) throw res ? await ApiError.from(res) : new ApiError(0, null, null, "");
    wait = clampWait(serverWait ?? DEFAULT_WAIT_MS * 2 ** Math.min(failures, 5));
    onPoll?.({ waitMs: wait, notModified: false, failures });
  }
}
