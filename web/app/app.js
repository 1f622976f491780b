// The order page: log in, place an order, follow it live, list recent
// orders. Everything the page shows comes from the API; the token is kept
// in sessionStorage (so a reload keeps the session) and never in a URL.

import { ApiError, describe, newIdempotencyKey, request, retryAfterSeconds } from "./api.js";
import { TERMINAL, follow } from "./follow.js";
import { formatAmount, parseAmount } from "./money.js";
import { loadRules, validQuantity, validSKU } from "./rules.js";

const SESSION_KEY = "orderflow.session";
const PASSWORD_KEY = "orderflow.password-required";
const RECENT_LIMIT = 10;
const MAX_TIMER_MS = 2 ** 31 - 1;

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

const state = {
  session: null, // {token, user, expiresAt}
  needsPassword: false,
  following: null, // AbortController of the status URL being followed
  current: "", // id of the order in the tracker
  lastAttempt: null, // {body, key}: a retry of an unanswered submission reuses its key
  busy: false,
  expiryTimer: 0,
  recentSeq: 0,
  rules: null, // the order rules of the API's document, once loaded (rules.js)
};

// ---- storage (sessionStorage may be unavailable; then memory only) ----

function stored(key) {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

function store(key, value) {
  try {
    if (value == null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
    /* memory only */
  }
}

function loadSession() {
  try {
    const s = JSON.parse(stored(SESSION_KEY) || "null");
    if (s && typeof s.token === "string" && typeof s.user === "string" && typeof s.expiresAt === "number") return s;
  } catch {
    /* ignore a damaged entry */
  }
  return null;
}

function setSession(s) {
  state.session = s;
  store(SESSION_KEY, s ? JSON.stringify(s) : null);
  clearTimeout(state.expiryTimer);
  if (s) {
    const left = Math.min(MAX_TIMER_MS, Math.max(0, s.expiresAt - Date.now()));
    state.expiryTimer = setTimeout(() => expire("Your session has expired. Please log in again."), left);
  }
}

// ---- messages and field errors ----

/** say shows text in the live region; kind is info, success or error. */
function say(text, kind = "info") {
  const el = $("#message");
  el.dataset.kind = kind;
  el.textContent = text;
}

function clearMessage() {
  const el = $("#message");
  el.textContent = "";
  delete el.dataset.kind;
}

function errorElementOf(input) {
  return document.getElementById(`${input.id}-error`) || input.closest(".item-row")?.querySelector(".item-error");
}

function setFieldError(input, text) {
  input.setAttribute("aria-invalid", "true");
  const el = errorElementOf(input);
  if (el) el.textContent = el.textContent ? `${el.textContent} ${text}` : text;
}

function clearFieldErrors(form) {
  $$("[aria-invalid]", form).forEach((el) => el.removeAttribute("aria-invalid"));
  $$(".field-error", form).forEach((el) => (el.textContent = ""));
}

/** report shows an API error; a rejected token sends the person back to log in. */
function report(err, context) {
  if (err?.name === "AbortError") return;
  if (err instanceof ApiError && err.status === 401 && context !== "login") {
    expire(describe(err, context));
    return;
  }
  if (!(err instanceof ApiError)) console.error(err);
  say(describe(err, context), "error");
}

function setBusy(button, busy, label) {
  state.busy = busy;
  if (busy) {
    button.dataset.label = button.textContent;
    button.textContent = label;
    button.setAttribute("aria-disabled", "true");
  } else {
    button.textContent = button.dataset.label || button.textContent;
    button.removeAttribute("aria-disabled");
  }
}

// ---- views ----

function showLogin(message) {
  stopFollowing();
  resetTracker();
  $("#recent").replaceChildren();
  $("#app-view").hidden = true;
  $("#session").hidden = true;
  $("#login-view").hidden = false;
  $("#password-field").hidden = !state.needsPassword;
  if (message) say(message, "error");
  $("#user-id").focus();
}

function showApp() {
  $("#login-view").hidden = true;
  $("#app-view").hidden = false;
  $("#session").hidden = false;
  $("#session-user").textContent = state.session.user;
  loadRecent();
  $("#amount").focus();
}

/** expire ends the session (expired or rejected token) with a message. */
function expire(message) {
  setSession(null);
  showLogin(message);
}

// ---- login ----

async function onLogin(event) {
  event.preventDefault();
  if (state.busy) return;
  const form = event.currentTarget;
  clearFieldErrors(form);
  clearMessage();
  const userInput = $("#user-id");
  const passInput = $("#password");
  const user = userInput.value.trim();
  if (!user) {
    setFieldError(userInput, "Enter your user id.");
    userInput.focus();
    return;
  }
  const body = { user_id: user };
  if (state.needsPassword) {
    if (!passInput.value) {
      setFieldError(passInput, "Enter your password.");
      passInput.focus();
      return;
    }
    body.password = passInput.value;
  }
  const button = $("#login-submit");
  setBusy(button, true, "Logging in…");
  try {
    const { data } = await request("POST", "login", { body });
    passInput.value = "";
    setSession({ token: data.access_token, user, expiresAt: Date.now() + data.expires_in * 1000 });
    showApp();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && !state.needsPassword) {
      // Identifier first: this server checks passwords, so ask for one.
      state.needsPassword = true;
      store(PASSWORD_KEY, "1");
      $("#password-field").hidden = false;
      say("This server needs a password. Enter it to log in.", "info");
      passInput.focus();
      return;
    }
    if (err instanceof ApiError && err.status === 422) {
      const text = "A user id is 1 to 128 letters, digits or . _ @ + -, starting with a letter or digit.";
      setFieldError(userInput, text);
      say(text, "error");
      userInput.focus();
      return;
    }
    report(err, "login");
  } finally {
    setBusy(button, false);
  }
}

function onLogout() {
  setSession(null);
  showLogin();
  say("You are logged out.", "info");
}

// ---- the order form ----

let itemSeq = 0;

function addItem() {
  const n = ++itemSeq;
  const li = $("#item-row").content.firstElementChild.cloneNode(true);
  const sku = $(".item-sku", li);
  const qty = $(".item-qty", li);
  const err = $(".item-error", li);
  sku.id = `item-${n}-sku`;
  qty.id = `item-${n}-qty`;
  err.id = `item-${n}-error`;
  $(".item-sku-label", li).htmlFor = sku.id;
  $(".item-qty-label", li).htmlFor = qty.id;
  sku.setAttribute("aria-describedby", err.id);
  qty.setAttribute("aria-describedby", err.id);
  $(".item-remove", li).addEventListener("click", () => removeItem(li));
  limitItem(li);
  $("#items").append(li);
  renumberItems();
  sku.focus();
}

/** limitItem gives an item's inputs the API's limits, once they are known. */
function limitItem(li) {
  if (!state.rules) return;
  $(".item-sku", li).maxLength = state.rules.sku.maxLength;
  Object.assign($(".item-qty", li), { min: state.rules.quantity.min, max: state.rules.quantity.max });
}

function removeItem(li) {
  const next = li.nextElementSibling || li.previousElementSibling;
  li.remove();
  renumberItems();
  (next ? $(".item-sku", next) : $("#add-item")).focus();
}

function renumberItems() {
  $$("#items > li").forEach((li, i) => {
    $(".item-sku-label", li).textContent = `Item ${i + 1} SKU`;
    $(".item-qty-label", li).textContent = "Quantity";
    $(".item-qty", li).setAttribute("aria-label", `Quantity of item ${i + 1}`);
    $(".item-remove", li).setAttribute("aria-label", `Remove item ${i + 1}`);
  });
}

/**
 * readOrder validates the form by rules (from loadRules; null: the server
 * alone checks SKUs, quantities and the largest amount); it returns the
 * request body or null (errors shown).
 */
function readOrder(form, rules) {
  const invalid = [];
  const amountInput = $("#amount");
  const currency = $("#currency").value;
  const amount = parseAmount(amountInput.value, currency, rules?.amount.max);
  if (amount.error) {
    setFieldError(amountInput, amount.error);
    invalid.push(amountInput);
  }
  const items = [];
  $$("#items > li", form).forEach((li, i) => {
    const sku = $(".item-sku", li);
    const qty = $(".item-qty", li);
    const skuText = sku.value.trim();
    if (!skuText || (rules && !validSKU(skuText, rules))) {
      setFieldError(sku, skuText ? `Item ${i + 1}: a SKU is letters, digits, dot, dash or underscore.` : `Item ${i + 1}: enter a SKU, or remove the item.`);
      invalid.push(sku);
    }
    const q = qty.value.trim();
    if (rules && !validQuantity(q, rules)) {
      setFieldError(qty, `Item ${i + 1}: the quantity is a whole number from ${rules.quantity.min} to ${rules.quantity.max}.`);
      invalid.push(qty);
    }
    items.push({ sku: skuText, quantity: Number(q) });
  });
  if (invalid.length) {
    say(invalid.length === 1 ? "Please fix the highlighted field." : "Please fix the highlighted fields.", "error");
    invalid[0].focus();
    return null;
  }
  const body = { amount: amount.value, currency };
  if (items.length) body.items = items;
  return body;
}

/** inputOfField finds the form control an API field name refers to. */
function inputOfField(field) {
  if (field === "amount") return $("#amount");
  if (field === "currency") return $("#currency");
  const m = /^items\[(\d+)\]\.(sku|quantity)$/.exec(field || "");
  if (m) {
    const li = $$("#items > li")[Number(m[1])];
    if (li) return $(m[2] === "sku" ? ".item-sku" : ".item-qty", li);
  }
  return null;
}

async function onPlaceOrder(event) {
  event.preventDefault();
  if (state.busy || !state.session) return;
  const form = event.currentTarget;
  const rules = state.rules ?? (await loadRules());
  if (state.busy || !state.session) return;
  clearFieldErrors(form);
  clearMessage();
  const body = readOrder(form, rules);
  if (!body) return;
  const text = JSON.stringify(body);
  const key = state.lastAttempt?.body === text ? state.lastAttempt.key : newIdempotencyKey();
  state.lastAttempt = { body: text, key };
  const button = $("#place-order");
  setBusy(button, true, "Placing order…");
  try {
    const res = await request("POST", "orders", {
      token: state.session.token,
      body,
      headers: { "Idempotency-Key": key },
    });
    state.lastAttempt = null;
    const a = res.data;
    const firstWait = (retryAfterSeconds(res.headers.get("Retry-After")) ?? 1) * 1000;
    say(`Order placed for ${formatAmount(body.amount, body.currency)}. Its status updates below.`, "success");
    showOrder({
      order_id: a.order_id,
      status: a.status,
      amount: body.amount,
      currency: body.currency,
      items: body.items || [],
      created_at: new Date().toISOString(),
    });
    startFollowing(a.status_url, firstWait);
    loadRecent();
  } catch (err) {
    // The outcome of a network failure, a 5xx or a 409 is unknown: a retry
    // of the same order reuses the key, so it cannot create a second order.
    if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 409) {
      state.lastAttempt = null;
    }
    if (err instanceof ApiError && err.status === 422) {
      const field = err.fields[0]?.field;
      const input = inputOfField(field);
      if (input) {
        setFieldError(input, describe(err, "order"));
        input.focus();
      }
    }
    report(err, "order");
  } finally {
    setBusy(button, false);
  }
}

// ---- the tracker ----

const STEP_INDEX = { PENDING: 0, PROCESSING: 1 };

const FINAL = {
  COMPLETED: ["Completed", "Paid and confirmed"],
  REJECTED: ["Rejected", "Declined by a check; see why below"],
  FAILED: ["Failed", "Could not be processed; see why below"],
  CANCELLED: ["Cancelled", "Cancelled at your request"],
};

/** reasonInWords says why an order was rejected or failed. */
function reasonInWords(failure) {
  switch (failure?.code) {
    case "fraud_suspected":
      return "Rejected by our fraud checks, so it was not charged.";
    case "out_of_stock":
      return "Rejected: there is not enough stock for an item, so it was not charged.";
    case "unknown_sku":
      return "Rejected: an item's SKU is not in the catalogue, so it was not charged.";
    case "payment_declined":
      return "Rejected: the payment was declined.";
    case "processing_failed":
    case "dead_lettered":
      return "Failed: the order could not be processed, even after several attempts.";
  }
  return failure?.title ? `${failure.title}.` : "The order did not go through.";
}

function statusWord(status) {
  return (
    { PENDING: "Pending", PROCESSING: "Processing", COMPLETED: "Completed", REJECTED: "Rejected", FAILED: "Failed", CANCELLED: "Cancelled" }[
      status
    ] || status
  );
}

function resetTracker() {
  state.current = "";
  $("#tracker-empty").hidden = false;
  $("#tracker-body").hidden = true;
}

function showOrder(o) {
  state.current = o.order_id;
  $("#tracker-empty").hidden = true;
  $("#tracker-body").hidden = false;
  $("#t-id").textContent = o.order_id;
  const items = (o.items || []).map((it) => `${it.quantity} × ${it.sku}`).join(", ");
  $("#t-amount").textContent = formatAmount(o.amount, o.currency) + (items ? ` · ${items}` : "");
  const created = $("#t-created");
  created.dateTime = o.created_at;
  created.textContent = new Date(o.created_at).toLocaleString();
  $("#t-poll").textContent = "";
  renderStatus(o);
  markCurrentRow();
}

function renderStatus(o) {
  const terminal = TERMINAL.has(o.status);
  const at = terminal ? 2 : (STEP_INDEX[o.status] ?? 0);
  $$("#timeline > li").forEach((li, i) => {
    li.dataset.state = i < at || terminal ? "done" : i === at ? "current" : "todo";
    if (i === at && !terminal) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  });
  const final = $('#timeline > li[data-step="FINAL"]');
  const [name, sub] = FINAL[o.status] || ["Done", "Completed, rejected or failed"];
  final.dataset.outcome = terminal ? o.status.toLowerCase() : "";
  $("#final-name").textContent = name;
  $("#final-sub").textContent = sub;
  const status = $("#t-status");
  status.dataset.status = o.status;
  status.textContent = `Status: ${statusWord(o.status)}`;

  const box = $("#outcome");
  box.hidden = !terminal;
  box.dataset.outcome = terminal ? o.status.toLowerCase() : "";
  if (o.status === "COMPLETED") {
    $("#outcome-title").textContent = "Completed: the payment went through and the order is confirmed.";
    $("#outcome-detail").textContent = "";
  } else if (o.status === "CANCELLED") {
    const refunded = o.cancellation?.refunded;
    $("#outcome-title").textContent = refunded
      ? "Cancelled: the payment had gone through and was refunded."
      : "Cancelled: the order was stopped and not charged.";
    $("#outcome-detail").textContent = refunded && o.cancellation.refund_id ? `Refund: ${o.cancellation.refund_id}` : "";
  } else if (terminal) {
    $("#outcome-title").textContent = reasonInWords(o.failure);
    $("#outcome-detail").textContent = o.failure?.detail ? `Details: ${o.failure.detail}` : "";
  }
  renderCancel(o);
  updateRow(o);
}

/** renderCancel shows the Cancel button while the order can still be cancelled. */
function renderCancel(o) {
  const button = $("#cancel-order");
  const requested = Boolean(o.cancellation);
  button.hidden = TERMINAL.has(o.status) || requested;
  if (requested && !TERMINAL.has(o.status)) pollHint("Cancellation requested; it takes effect at the next step.");
}

async function onCancelOrder() {
  if (!state.session || !state.current || state.busy) return;
  const id = state.current;
  const button = $("#cancel-order");
  setBusy(button, true, "Cancelling…");
  clearMessage();
  try {
    const { status, data } = await request("POST", `orders/${encodeURIComponent(id)}/cancel`, { token: state.session.token });
    if (state.current !== id) return;
    renderStatus(data);
    say(status === 200 ? "The order is cancelled." : "Cancellation requested: the order stops at its next step.", "success");
    if (!TERMINAL.has(data.status) && data.status_url) startFollowing(data.status_url, 0);
    else stopFollowing();
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) {
      say("This order has already finished and can no longer be cancelled.", "error");
      openOrder(id);
    } else {
      report(err, "order");
    }
  } finally {
    setBusy(button, false);
  }
}

function pollHint(text) {
  $("#t-poll").textContent = text;
}

function stopFollowing() {
  state.following?.abort();
  state.following = null;
}

function startFollowing(statusURL, firstWaitMs) {
  stopFollowing();
  const ctl = new AbortController();
  state.following = ctl;
  pollHint("Following live…");
  follow(statusURL, {
    signal: ctl.signal,
    firstWaitMs,
    onUpdate(doc) {
      if (doc.order_id === state.current) renderStatus(doc);
      else updateRow(doc);
    },
    onStream() {
      pollHint("Following live: updates arrive as they happen.");
    },
    onPoll({ waitMs, failures }) {
      const secs = Math.max(1, Math.round(waitMs / 1000));
      pollHint(failures ? `Connection problem; retrying in ${secs} s…` : `Following live; next check in ${secs} s.`);
    },
  }).then(
    () => {
      if (state.following !== ctl) return;
      state.following = null;
      pollHint("This is the final status.");
      loadRecent();
    },
    (err) => {
      if (err?.name === "AbortError" || state.following !== ctl) return;
      state.following = null;
      pollHint("Stopped following this order.");
      report(err, "status");
    },
  );
}

async function openOrder(id) {
  if (!state.session) return;
  stopFollowing();
  clearMessage();
  try {
    const { data } = await request("GET", `orders/${encodeURIComponent(id)}`, { token: state.session.token });
    showOrder(data);
    if (TERMINAL.has(data.status)) pollHint("This is the final status.");
    else if (data.status_url) startFollowing(data.status_url, 0);
    const title = $("#tracker-title");
    title.focus();
    title.scrollIntoView({ block: "nearest" });
  } catch (err) {
    report(err, "read");
  }
}

// ---- recent orders ----

async function loadRecent() {
  if (!state.session) return;
  const seq = ++state.recentSeq;
  try {
    const { data } = await request("GET", `orders?limit=${RECENT_LIMIT}`, { token: state.session.token });
    if (seq === state.recentSeq && state.session) renderRecent(data.orders || []);
  } catch (err) {
    if (seq === state.recentSeq) report(err, "read");
  }
}

function renderRecent(orders) {
  const list = $("#recent");
  list.replaceChildren(
    ...orders.map((o) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "order-row";
      b.dataset.id = o.order_id;
      b.addEventListener("click", () => openOrder(o.order_id));
      const amount = document.createElement("span");
      amount.className = "order-amount";
      amount.textContent = formatAmount(o.amount, o.currency);
      const badge = document.createElement("span");
      badge.className = "badge";
      const when = document.createElement("time");
      when.className = "order-when";
      when.dateTime = o.created_at;
      when.textContent = new Date(o.created_at).toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" });
      const id = document.createElement("code");
      id.className = "order-id";
      id.textContent = `…${o.order_id.slice(-8)}`;
      id.title = o.order_id;
      b.append(amount, badge, when, id);
      li.append(b);
      setBadge(badge, o.status);
      return li;
    }),
  );
  $("#recent-empty").hidden = orders.length > 0;
  markCurrentRow();
}

function setBadge(badge, status) {
  badge.dataset.status = status;
  badge.textContent = statusWord(status);
}

function updateRow(o) {
  const row = $$("#recent .order-row").find((b) => b.dataset.id === o.order_id);
  if (row) setBadge($(".badge", row), o.status);
}

function markCurrentRow() {
  $$("#recent .order-row").forEach((b) => {
    if (b.dataset.id === state.current) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  });
}

// ---- start ----

function init() {
  $("#login-form").addEventListener("submit", onLogin);
  $("#logout").addEventListener("click", onLogout);
  $("#order-form").addEventListener("submit", onPlaceOrder);
  $("#add-item").addEventListener("click", addItem);
  $("#cancel-order").addEventListener("click", onCancelOrder);
  $("#refresh").addEventListener("click", () => {
    clearMessage();
    loadRecent();
  });
  loadRules().then((rules) => {
    state.rules = rules;
    $$("#items > li").forEach(limitItem);
  });
  state.needsPassword = stored(PASSWORD_KEY) === "1";
  const s = loadSession();
  if (s && s.expiresAt > Date.now()) {
    setSession(s);
    showApp();
  } else if (s) {
    setSession(null);
    showLogin("Your session has expired. Please log in again.");
  } else {
    showLogin();
  }
  document.documentElement.dataset.ready = "true";
}

init();
