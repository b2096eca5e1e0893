// charla's web UI: one page that reads and writes through the node's local
// API (docs/API.md). It has no framework and no build step. User text only
// ever reaches the page as text nodes (see renderText), never as HTML.
import { catalogues } from "./i18n/index.js";

const SESSION_KEY = "charla.session"; // sessionStorage: gone with the tab
const LANG_KEY = "charla.lang"; // localStorage: a preference, not a secret
const PAGE = 50; // messages fetched per step back through history
const MAX_LIMIT = 10000; // the API's MaxLogLimit
const POLL_MS = 10000; // status, members and peers
const RETRY_MS = 2000; // reconnecting the event stream
const GROUP_MS = 5 * 60 * 1000; // messages closer than this share one header
const SYNC_STALE_MS = 30000; // a catch-up not heard of for this long is over
const SEARCH_LIMIT = 50; // results one search shows
const PREVIEW_MAX = 16 << 20; // images up to this size are previewed; the node's auto-download size
const REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "🙏"]; // the reactions offered

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  lang: null, // a catalogue
  status: null,
  rooms: new Map(), // room ID → node.Room
  current: null, // a room ID, or "@<peer ID>" for a direct room not yet made
  pendingDirect: null, // {id, name} while current is such a room
  messages: new Map(), // room ID → [node.Message], in the API's order
  limits: new Map(), // room ID → how many messages were asked for
  complete: new Set(), // rooms whose whole history is loaded
  unread: new Map(), // room ID → count
  members: [],
  online: new Set(), // connected peer IDs
  sync: new Map(), // peer ID → {name, remaining, seen}
  nodeLost: false,
  loadingOlder: false,
  showMembers: true,
  found: null, // the ID of the message a search result jumped to
  files: new Map(), // file ID → {info: node.File, preview: blob: URL, loading}
  uploads: [], // {name, loaded, total}
  replyTo: null, // the message the composer answers
  editing: null, // the message the composer edits
  picker: null, // the ID of the message whose reaction picker is open
};

// ---- strings -------------------------------------------------------------

function pickLanguage() {
  const saved = localStorage.getItem(LANG_KEY);
  const wanted = [saved, ...(navigator.languages || [navigator.language])].filter(Boolean);
  for (const w of wanted) {
    const c = catalogues.find((c) => c.code === w.toLowerCase().split("-")[0]);
    if (c) return c;
  }
  return catalogues[0];
}

// t returns the string key of the current language with {name}s filled in.
function t(key, vars = {}) {
  let s = state.lang.strings[key] ?? catalogues[0].strings[key] ?? key;
  if (typeof s === "object") {
    s = s[new Intl.PluralRules(state.lang.code).select(vars.count ?? 0)] ?? s.other;
  }
  return s.replace(/\{(\w+)\}/g, (m, name) => {
    const v = vars[name];
    if (v === undefined) return m;
    return typeof v === "number" ? v.toLocaleString(state.lang.code) : String(v);
  });
}

function applyStrings() {
  document.documentElement.lang = state.lang.code;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-aria]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAria));
  }
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  const select = $("language");
  select.replaceChildren(
    ...catalogues.map((c) => {
      const o = new Option(c.name, c.code, false, c === state.lang);
      o.lang = c.code;
      return o;
    }),
  );
}

// ---- the API -------------------------------------------------------------

class APIError extends Error {
  constructor(status, message, hint) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.hint = hint;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + state.token };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) loggedOut(t("loginUsed"));
  if (!res.ok) throw new APIError(res.status, data.error, data.hint);
  return data;
}

function messagesPath(room, limit) {
  return `/api/rooms/${encodeURIComponent(room)}/messages?limit=${limit}`;
}

// login trades the one-time token in the URL's fragment for a session
// token. The fragment is removed first, so a reload or a copied address
// never carries a used token.
async function login() {
  const m = /^#login=([0-9a-f]+)$/.exec(location.hash);
  if (m) {
    history.replaceState(null, "", location.pathname + location.search);
    try {
      const res = await fetch("/api/session", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ login: m[1] }),
        cache: "no-store",
      });
      if (res.ok) {
        sessionStorage.setItem(SESSION_KEY, (await res.json()).token);
      } else if (!sessionStorage.getItem(SESSION_KEY)) {
        return loggedOut(t("loginUsed"));
      }
    } catch {
      return loggedOut(t("loginUnreachable"));
    }
  }
  state.token = sessionStorage.getItem(SESSION_KEY);
  if (!state.token) return loggedOut("");
  return true;
}

function loggedOut(error) {
  sessionStorage.removeItem(SESSION_KEY);
  state.token = null;
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").hidden = !error;
  $("login-error").textContent = error;
  document.title = t("appName");
  return false;
}

// ---- events --------------------------------------------------------------

// listen reads GET /api/events for as long as the page lives. EventSource
// cannot send an Authorization header, so this parses the stream itself.
async function listen() {
  while (state.token) {
    try {
      const res = await fetch("/api/events", {
        headers: { Authorization: "Bearer " + state.token },
        cache: "no-store",
      });
      if (res.status === 401) return loggedOut(t("loginUsed"));
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      if (state.nodeLost) {
        // Whatever happened while we were away is in the history, not the stream.
        state.nodeLost = false;
        renderBanners();
        refreshAfterGap();
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          onFrame(buf.slice(0, end));
          buf = buf.slice(end + 2);
        }
      }
    } catch {
      // The node stopped or restarted: say so, and try again.
    }
    state.nodeLost = true;
    renderBanners();
    await new Promise((r) => setTimeout(r, RETRY_MS));
  }
}

function onFrame(frame) {
  const data = frame
    .split("\n")
    .filter((l) => l.startsWith("data:"))
    .map((l) => l.slice(5).replace(/^ /, ""))
    .join("\n");
  if (!data) return; // a ": ping"
  let ev;
  try {
    ev = JSON.parse(data);
  } catch {
    return;
  }
  if (ev.type === "message" && ev.message) onMessage(ev.message);
  if (ev.type === "sync" && ev.sync) onSync(ev.sync);
}

function onMessage(m) {
  if (!state.rooms.has(m.room)) refreshRooms();
  const list = state.messages.get(m.room);
  if (list && replaceMessage(list, m)) {
    // An edit, delete or reaction: the message is shown anew, not counted.
    if (m.room === state.current) renderMessages({ keep: true });
    return;
  }
  if (!list && (m.edited || m.deleted || (m.reactions && m.reactions.length))) return; // an update, most likely
  if (list && !insertMessage(list, m)) return; // had it already
  const mine = state.status && m.author === state.status.peer_id;
  const seen = m.room === state.current && !document.hidden;
  if (!mine && !seen) state.unread.set(m.room, (state.unread.get(m.room) || 0) + 1);
  if (m.room === state.current) renderMessages({ stick: mine });
  renderRooms();
  renderTitle();
}

function onSync(p) {
  if (p.remaining > 0) state.sync.set(p.peer, { name: p.name || p.peer, remaining: p.remaining, seen: Date.now() });
  else state.sync.delete(p.peer);
  renderBanners();
}

// replaceMessage puts m in place of the message with its ID in list, if
// there is one, and reports whether there was.
function replaceMessage(list, m) {
  const i = list.findIndex((x) => x.id === m.id);
  if (i < 0) return false;
  list[i] = m;
  return true;
}

// insertMessage puts m in list in the API's order (lamport, author, seq) and
// reports whether it was new.
function insertMessage(list, m) {
  if (list.some((x) => x.id === m.id)) return false;
  const before = (a, b) =>
    a.lamport !== b.lamport ? a.lamport < b.lamport : a.author !== b.author ? a.author < b.author : a.seq < b.seq;
  let i = list.length;
  while (i > 0 && before(m, list[i - 1])) i--;
  list.splice(i, 0, m);
  return true;
}

// ---- loading -------------------------------------------------------------

async function refreshRooms() {
  const rooms = await api("GET", "/api/rooms");
  state.rooms = new Map(rooms.map((r) => [r.id, r]));
  if (state.pendingDirect) {
    const r = directRoomWith(state.pendingDirect.id);
    if (r) selectRoom(r.id);
  }
  if (!state.current && rooms.length) selectRoom(rooms[0].id);
  renderRooms();
}

async function refreshStatus() {
  const [status, members, peers] = await Promise.all([
    api("GET", "/api/status"),
    api("GET", "/api/members"),
    api("GET", "/api/peers"),
  ]);
  state.status = status;
  state.members = members;
  state.online = new Set(peers.filter((p) => p.connected).map((p) => p.peer_id));
  for (const p of status.peers || []) state.online.add(p);
  const now = Date.now();
  for (const s of status.sync || []) onSync(s);
  for (const [peer, s] of state.sync) if (now - s.seen > SYNC_STALE_MS) state.sync.delete(peer);
  $("workspace-name").textContent = status.workspace_name || status.workspace || "";
  $("self-name").textContent = status.name || "";
  renderMembers();
  renderBanners();
  renderTitle();
}

async function refreshAfterGap() {
  await refreshRooms().catch(() => {});
  if (state.current && state.rooms.has(state.current)) await loadRoom(state.current, state.limits.get(state.current));
}

// loadRoom fetches the newest limit messages of a room. The API has no
// "before" cursor yet, so stepping back asks for a larger limit.
async function loadRoom(room, limit = PAGE) {
  const msgs = await api("GET", messagesPath(room, limit));
  state.messages.set(room, msgs);
  state.limits.set(room, limit);
  if (msgs.length < limit || limit >= MAX_LIMIT) state.complete.add(room);
  else state.complete.delete(room);
}

async function loadOlder() {
  const room = state.current;
  if (state.loadingOlder || !state.rooms.has(room) || state.complete.has(room)) return;
  state.loadingOlder = true;
  renderMessages({ keep: true });
  const box = $("messages");
  const fromBottom = box.scrollHeight - box.scrollTop;
  try {
    await loadRoom(room, Math.min(MAX_LIMIT, (state.limits.get(room) || PAGE) + PAGE));
  } catch (err) {
    showError(t("loadFailed", { error: err.message }));
  } finally {
    state.loadingOlder = false;
  }
  if (room !== state.current) return;
  renderMessages({ keep: true });
  box.scrollTop = box.scrollHeight - fromBottom;
}

// ---- choosing a room -----------------------------------------------------

function roomName(room) {
  if (!room) return "";
  return room.kind === "channel" ? "#" + room.name : room.name.replace(/^@/, "");
}

function currentName() {
  if (state.pendingDirect) return state.pendingDirect.name;
  return roomName(state.rooms.get(state.current));
}

function directRoomWith(peerID) {
  const self = state.status && state.status.peer_id;
  for (const r of state.rooms.values()) {
    if (r.kind === "direct" && r.members.includes(peerID) && (peerID === self || r.members.length === 2)) return r;
  }
  return null;
}

async function selectRoom(id) {
  if (id !== state.current) {
    state.found = null;
    if (state.replyTo || state.editing) cancelCompose();
  }
  state.current = id;
  state.pendingDirect = null;
  state.unread.delete(id);
  renderRooms();
  renderTitle();
  renderHeader();
  renderMessages({ stick: true });
  $("text").focus();
  if (!state.messages.has(id)) {
    try {
      await loadRoom(id);
    } catch (err) {
      showError(t("loadFailed", { error: err.message }));
    }
    if (state.current === id) renderMessages({ stick: true });
  }
}

// openDirect shows the direct room with a member, or an empty one that
// the first message creates (the API takes "@<peer ID>" as a room).
function openDirect(member) {
  const r = directRoomWith(member.peer_id);
  if (r) return selectRoom(r.id);
  state.current = "@" + member.peer_id;
  state.pendingDirect = { id: member.peer_id, name: member.name };
  renderRooms();
  renderHeader();
  renderMessages({ stick: true });
  $("text").focus();
}

function moveRoom(step) {
  const order = [...$("channels").querySelectorAll("button"), ...$("directs").querySelectorAll("button")];
  const i = order.findIndex((b) => b.dataset.room === state.current);
  const next = order[(i + step + order.length) % order.length];
  if (next) next.click();
}

// ---- sending -------------------------------------------------------------

async function send(e) {
  e.preventDefault();
  const box = $("text");
  const text = box.value;
  if (!text.trim() || !state.current) return;
  const room = state.current;
  if (state.editing) return saveEdit(text);
  const body = { text };
  if (state.replyTo) body.reply_to = state.replyTo.id;
  const replyTo = state.replyTo;
  box.value = "";
  autosize();
  setComposeMode(null, null);
  try {
    const m = await api("POST", `/api/rooms/${encodeURIComponent(room)}/messages`, body);
    if (!state.rooms.has(m.room)) await refreshRooms();
    if (!state.messages.has(m.room)) state.messages.set(m.room, []);
    insertMessage(state.messages.get(m.room), m);
    if (state.current === room && room !== m.room) await selectRoom(m.room);
    if (state.current === m.room) renderMessages({ stick: true });
  } catch (err) {
    if (!box.value) box.value = text; // give it back to edit or retry
    if (replyTo && !state.replyTo) setComposeMode(replyTo, null);
    autosize();
    showError(t("sendFailed", { error: err.message }));
  }
}

// ---- replies, edits, deletes, reactions -----------------------------------

function messagePath(m, action) {
  return `/api/rooms/${encodeURIComponent(m.room)}/messages/${encodeURIComponent(m.id)}/${action}`;
}

// applyUpdate shows the message an action answered with.
function applyUpdate(m) {
  const list = state.messages.get(m.room);
  if (list) replaceMessage(list, m);
  if (m.room === state.current) renderMessages({ keep: true });
}

// setComposeMode makes the composer answer replyTo or edit editing (or
// neither), and shows which above it.
function setComposeMode(replyTo, editing) {
  state.replyTo = replyTo;
  state.editing = editing;
  const bar = $("compose-bar");
  const m = replyTo || editing;
  if (!m) {
    bar.hidden = true;
    bar.replaceChildren();
    return;
  }
  const label = replyTo
    ? t("replyingTo", { name: m.author_name || m.author.slice(-8) })
    : t("editingMessage");
  bar.replaceChildren(
    el("span", { class: "compose-label" }, label),
    replyTo ? el("span", { class: "compose-quote" }, quote(m.text)) : null,
    el("button", { type: "button", class: "icon-button", onclick: cancelCompose, "aria-label": t("cancel"), title: t("cancel") }, "×"),
  );
  bar.hidden = false;
}

function cancelCompose() {
  const wasEditing = state.editing;
  setComposeMode(null, null);
  if (wasEditing) {
    $("text").value = "";
    autosize();
  }
  $("text").focus();
}

function quote(text) {
  const s = (text || "").replace(/\s+/g, " ").trim();
  return s.length > 100 ? s.slice(0, 100) + "…" : s;
}

function startReply(m) {
  setComposeMode(m, null);
  $("text").focus();
}

function startEdit(m) {
  setComposeMode(null, m);
  const box = $("text");
  box.value = m.text;
  autosize();
  box.focus();
}

async function saveEdit(text) {
  const m = state.editing;
  const box = $("text");
  if (text === m.text) {
    cancelCompose();
    return;
  }
  box.value = "";
  autosize();
  setComposeMode(null, null);
  try {
    applyUpdate(await api("POST", messagePath(m, "edit"), { text }));
  } catch (err) {
    if (!box.value) box.value = text;
    setComposeMode(null, m);
    autosize();
    showError(t("editFailed", { error: err.message }));
  }
}

async function deleteMessage(m) {
  if (!window.confirm(t("confirmDelete"))) return;
  try {
    applyUpdate(await api("POST", messagePath(m, "delete"), {}));
  } catch (err) {
    showError(t("deleteFailed", { error: err.message }));
  }
}

async function react(m, emoji) {
  state.picker = null;
  try {
    applyUpdate(await api("POST", messagePath(m, "reactions"), { emoji }));
  } catch (err) {
    showError(t("reactFailed", { error: err.message }));
  }
}

function isAdmin() {
  const me = state.status && state.members.find((x) => x.peer_id === state.status.peer_id);
  return !!me && (me.role === "admin" || me.role === "owner");
}

// renderActions is the row of buttons shown on a message under the pointer
// or the keyboard focus.
function renderActions(m) {
  if (m.deleted) return null;
  const mine = state.status && m.author === state.status.peer_id;
  const button = (label, icon, onclick, cls = "") =>
    el("button", { type: "button", class: "icon-button " + cls, title: label, "aria-label": label, onclick }, icon);
  const open = state.picker === m.id;
  const bar = el(
    "div",
    { class: "msg-actions" },
    button(t("reply"), "↩", () => startReply(m), "act-reply"),
    button(t("react"), "☺", () => {
      state.picker = open ? null : m.id;
      renderMessages({ keep: true });
    }, "act-react"),
    mine && m.kind === "text" ? button(t("edit"), "✎", () => startEdit(m), "act-edit") : null,
    mine || isAdmin() ? button(t("delete"), "✕", () => deleteMessage(m), "act-delete") : null,
  );
  if (open) {
    bar.append(
      el(
        "div",
        { class: "picker", role: "group", "aria-label": t("react") },
        ...REACTIONS.map((e) => el("button", { type: "button", class: "emoji", title: e, onclick: () => react(m, e) }, e)),
      ),
    );
    bar.classList.add("open");
  }
  return bar;
}

function renderReactions(m) {
  if (!m.reactions || !m.reactions.length || m.deleted) return null;
  return el(
    "div",
    { class: "reactions" },
    ...m.reactions.map((r) =>
      el(
        "button",
        {
          type: "button",
          class: "reaction" + (r.mine ? " mine" : ""),
          "aria-pressed": r.mine ? "true" : "false",
          title: t("reactionCount", { count: r.count, emoji: r.emoji }),
          onclick: () => react(m, r.emoji),
        },
        r.emoji + " " + r.count,
      ),
    ),
  );
}

function renderQuote(m) {
  if (!m.reply_to) return null;
  const target = (state.messages.get(m.room) || []).find((x) => x.id === m.reply_to);
  const text = target ? (target.deleted ? t("messageDeleted") : quote(target.text)) : m.reply_text || "…";
  const who = target ? target.author_name || target.author.slice(-8) : m.reply_author || "";
  return el(
    "button",
    {
      type: "button",
      class: "quote",
      onclick: () => {
        const e = document.querySelector(`article[data-id="${m.reply_to}"]`);
        if (e) {
          e.scrollIntoView({ block: "center" });
          e.focus();
        }
      },
    },
    el("span", { class: "author" }, who),
    " ",
    text,
  );
}

function autosize() {
  const box = $("text");
  box.style.height = "auto";
  box.style.height = box.scrollHeight + 2 + "px";
}

// ---- rendering -----------------------------------------------------------

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k in e && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v);
  }
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
}

function renderRooms() {
  const channels = [];
  const directs = [];
  const items = [...state.rooms.values()].sort((a, b) => roomName(a).localeCompare(roomName(b), state.lang.code));
  if (state.pendingDirect) {
    items.push({ id: state.current, name: state.pendingDirect.name, kind: "direct" });
  }
  for (const r of items) {
    const n = state.unread.get(r.id) || 0;
    const name = roomName(r);
    const b = el(
      "button",
      {
        type: "button",
        class: n ? "unread" : "",
        "data-room": r.id,
        "aria-current": String(r.id === state.current),
        "aria-label": n ? t("unreadIn", { room: name, count: n }) : name,
        onclick: () => (r.id === state.current ? $("text").focus() : selectRoom(r.id)),
      },
      el("span", { class: "name" }, name),
      n ? el("span", { class: "badge", "aria-hidden": "true" }, n.toLocaleString(state.lang.code)) : null,
    );
    (r.kind === "channel" ? channels : directs).push(el("li", {}, b));
  }
  $("channels").replaceChildren(...channels);
  $("directs").replaceChildren(...directs);
}

function renderHeader() {
  const name = currentName();
  $("room-title").textContent = name || t("noRoom");
  $("messages").setAttribute("aria-label", t("messagesIn", { room: name }));
  $("text").setAttribute("aria-label", t("messageTo", { room: name }));
  $("text").placeholder = name ? t("messageTo", { room: name }) : "";
  $("text").disabled = !state.current;
  $("send").disabled = !state.current;
  $("attach").disabled = !state.current;
  $("attach").title = t("attachFile");
  const tm = $("toggle-members");
  tm.setAttribute("aria-label", t(state.showMembers ? "hideMembers" : "showMembers"));
  tm.setAttribute("aria-expanded", String(state.showMembers));
  tm.title = tm.getAttribute("aria-label");
}

function renderTitle() {
  let total = 0;
  for (const n of state.unread.values()) total += n;
  const ws = state.status ? state.status.workspace_name : "";
  const base = [currentName(), ws, t("appName")].filter(Boolean).join(" · ");
  document.title = total ? `(${total.toLocaleString(state.lang.code)}) ${base}` : base;
}

function dayLabel(d) {
  const day = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  const today = new Date();
  today.setHours(0, 0, 0, 0);
  const diff = Math.round((today - day) / 86400000);
  if (diff === 0) return t("today");
  if (diff === 1) return t("yesterday");
  return d.toLocaleDateString(state.lang.code, {
    weekday: "long",
    day: "numeric",
    month: "long",
    year: day.getFullYear() === today.getFullYear() ? undefined : "numeric",
  });
}

// renderMessages redraws the current room. stick scrolls to the newest
// message; keep leaves the scroll position to the caller; otherwise the
// list stays at the bottom if it was there.
function renderMessages({ stick = false, keep = false } = {}) {
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const list = state.messages.get(state.current);
  const out = [];
  if (!state.current) {
    out.push(el("p", { class: "note" }, t("noRoom")));
  } else if (state.pendingDirect) {
    out.push(el("p", { class: "note" }, t("emptyRoom")));
  } else if (list) {
    if (state.loadingOlder) out.push(el("p", { class: "note" }, t("loadingOlder")));
    else if (state.complete.has(state.current)) {
      out.push(el("p", { class: "note" }, list.length ? t("historyStart", { room: currentName() }) : t("emptyRoom")));
    }
    let prev = null;
    for (const m of list) {
      const d = new Date(m.time);
      const newDay = !prev || new Date(prev.time).toDateString() !== d.toDateString();
      if (newDay) out.push(el("h2", { class: "day" }, dayLabel(d)));
      const first = newDay || prev.author !== m.author || d - new Date(prev.time) > GROUP_MS;
      out.push(renderMessage(m, first));
      prev = m;
    }
  }
  box.replaceChildren(...out);
  if (stick || (!keep && atBottom)) box.scrollTop = box.scrollHeight;
}

function renderMessage(m, first) {
  const d = new Date(m.time);
  const time = el(
    "time",
    { datetime: m.time, title: d.toLocaleString(state.lang.code) },
    d.toLocaleTimeString(state.lang.code, { hour: "2-digit", minute: "2-digit" }),
  );
  const mine = state.status && m.author === state.status.peer_id;
  const pending = mine && m.state === "local";
  const head = first
    ? el(
        "div",
        { class: "msg-head" },
        el("span", { class: "author" }, m.author_name || m.author.slice(-8)),
        time,
        pending ? el("span", { class: "state", title: t("stateLocal") }, "○") : null,
      )
    : null;
  const body = el("div", { class: "body" });
  if (m.deleted) body.append(el("em", { class: "deleted" }, t("messageDeleted")));
  else if (m.kind === "file") body.append(renderFile(m));
  else renderText(m.text, body);
  if (m.edited && !m.deleted) body.append(" ", el("span", { class: "edited" }, t("edited")));
  const cls = ["msg", first ? "first" : "", m.id === state.found ? "found" : "", m.deleted ? "is-deleted" : ""]
    .filter(Boolean)
    .join(" ");
  return el(
    "article",
    { class: cls, "data-id": m.id, tabindex: "-1" },
    renderActions(m),
    renderQuote(m),
    head,
    body,
    renderReactions(m),
  );
}

// renderText writes text into parent as light markdown: ```blocks```,
// `code`, **bold**, *italics* or _italics_, and http(s) links. Everything
// is a text node or an element made here, so no user text is parsed as HTML.
function renderText(text, parent) {
  const parts = text.split(/```\n?([\s\S]*?)```/);
  parts.forEach((part, i) => {
    if (i % 2 === 1) parent.append(el("pre", {}, el("code", {}, part.replace(/\n$/, ""))));
    else renderInline(part, parent);
  });
}

const INLINE =
  /`([^`\n]+)`|\*\*(?=\S)([^\n]*?\S)\*\*|(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])|(?<!\w)_(?=\S)([^_\n]*?\S)_(?!\w)|\bhttps?:\/\/[^\s<>"]*[^\s<>".,;:!?)\]'}]/g;

function renderInline(text, parent) {
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) parent.append(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[1] !== undefined) parent.append(el("code", {}, m[1]));
    else if (m[2] !== undefined) renderInline(m[2], parent.appendChild(el("strong")));
    else if (m[3] !== undefined) renderInline(m[3], parent.appendChild(el("em")));
    else if (m[4] !== undefined) renderInline(m[4], parent.appendChild(el("em")));
    else parent.append(el("a", { href: m[0], target: "_blank", rel: "noopener noreferrer" }, m[0]));
  }
  if (last < text.length) parent.append(text.slice(last));
}

function renderMembers() {
  const self = state.status && state.status.peer_id;
  const items = state.members.map((m) => {
    const online = m.peer_id === self || state.online.has(m.peer_id);
    const presence = t(online ? "online" : "offline");
    const label = [m.name, m.peer_id === self ? t("you") : "", presence].filter(Boolean).join(", ");
    return el(
      "li",
      {},
      el(
        "button",
        // A direct room needs another member: one's own entry opens nothing.
        { type: "button", "aria-label": label, title: m.peer_id, disabled: m.peer_id === self, onclick: () => openDirect(m) },
        el("span", { class: online ? "dot online" : "dot", "aria-hidden": "true" }),
        el("span", {}, m.name + (m.peer_id === self ? " " + t("you") : "")),
        m.role && m.role !== "member" ? el("span", { class: "role" }, t("role_" + m.role)) : null,
      ),
    );
  });
  $("member-list").replaceChildren(...items);
}

let errorText = "";
let errorTimer = 0;

function showError(text) {
  errorText = text;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => {
    errorText = "";
    renderBanners();
  }, 8000);
  renderBanners();
}

function renderBanners() {
  const out = [];
  if (state.nodeLost) out.push(t("nodeLost"));
  else if (state.status && (!state.status.peers || state.status.peers.length === 0)) out.push(t("noPeer"));
  for (const s of state.sync.values()) out.push(t("catchingUp", { count: s.remaining, name: s.name }));
  if (errorText) out.push(errorText);
  $("banners").replaceChildren(...out.map((s) => el("div", { class: "banner" }, s)));
}

function renderAll() {
  applyStrings();
  renderHeader();
  renderRooms();
  renderMembers();
  renderBanners();
  renderMessages({ keep: true });
  renderTitle();
}

// ---- search --------------------------------------------------------------

async function search(e) {
  e.preventDefault();
  const q = $("search").value.trim();
  if (!q) return closeResults();
  let results;
  try {
    results = await api("GET", `/api/search?q=${encodeURIComponent(q)}&limit=${SEARCH_LIMIT}`);
  } catch (err) {
    return showError(t("searchFailed", { error: err.message }));
  }
  $("results-heading").textContent = results.length
    ? t("searchResults", { count: results.length, query: q })
    : t("noResults", { query: q });
  const words = searchWords(q);
  $("result-list").replaceChildren(
    ...results.map((m) => {
      const d = new Date(m.time);
      const text = el("span", { class: "result-text" });
      highlight(m.text, words, text);
      return el(
        "li",
        {},
        el(
          "button",
          { type: "button", class: "result", "data-id": m.id, onclick: () => jumpTo(m) },
          el(
            "span",
            { class: "result-head" },
            el("span", { class: "result-room" }, roomName(state.rooms.get(m.room)) || m.room_name),
            el("span", { class: "author" }, m.author_name || m.author.slice(-8)),
            el("time", { datetime: m.time }, d.toLocaleString(state.lang.code, { dateStyle: "medium", timeStyle: "short" })),
          ),
          text,
        ),
      );
    }),
  );
  $("results").hidden = false;
}

function closeResults() {
  $("results").hidden = true;
  $("result-list").replaceChildren();
}

// searchWords turns a query into what the index matched: each word, a
// trailing * meaning any word that starts with it.
function searchWords(q) {
  return q
    .split(/\s+/)
    .map((w) => ({ word: w.replace(/\*+$/, "").replace(/^"+|"+$/g, ""), prefix: w.endsWith("*") }))
    .filter((w) => w.word);
}

// highlight writes text into parent with the words of a search marked, as
// text nodes and <mark> elements: the text is never parsed as HTML.
function highlight(text, words, parent) {
  if (!words.length) return parent.append(text);
  const esc = (w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const alts = words.map((w) => esc(w.word) + (w.prefix ? "[\\p{L}\\p{N}]*" : "(?![\\p{L}\\p{N}])"));
  const re = new RegExp(`(?<![\\p{L}\\p{N}])(?:${alts.join("|")})`, "giu");
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (!m[0]) continue;
    if (m.index > last) parent.append(text.slice(last, m.index));
    parent.append(el("mark", {}, m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) parent.append(text.slice(last));
}

// jumpTo opens the room of a search result and scrolls to the message,
// asking for as much history as it takes to include it.
async function jumpTo(m) {
  closeResults();
  if (!state.rooms.has(m.room)) await refreshRooms().catch(() => {});
  try {
    let limit = state.limits.get(m.room) || PAGE;
    for (;;) {
      const list = state.messages.get(m.room);
      if (list && (list.some((x) => x.id === m.id) || state.complete.has(m.room))) break;
      if (list) limit = Math.min(MAX_LIMIT, limit * 2);
      await loadRoom(m.room, limit);
    }
  } catch (err) {
    return showError(t("loadFailed", { error: err.message }));
  }
  await selectRoom(m.room);
  state.found = m.id;
  renderMessages({ keep: true });
  const target = $("messages").querySelector(`article[data-id="${CSS.escape(m.id)}"]`);
  if (!target) return showError(t("notInHistory"));
  target.scrollIntoView({ block: "center" });
  target.focus({ preventScroll: true });
}

// ---- files ---------------------------------------------------------------

function formatSize(bytes) {
  const units = ["byte", "kilobyte", "megabyte", "gigabyte"];
  let i = 0;
  let n = bytes;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return new Intl.NumberFormat(state.lang.code, {
    style: "unit",
    unit: units[i],
    unitDisplay: i ? "short" : "long",
    maximumFractionDigits: n < 10 && i ? 1 : 0,
  }).format(n);
}

// renderFile draws a file message: its name and size, a download button,
// and a preview when it is a small image. The file's details are fetched
// once and kept in state.files.
function renderFile(m) {
  const entry = fileEntry(m.id);
  const f = entry.info;
  const name = f ? f.name : m.text;
  const download = el(
    "button",
    { type: "button", class: "download", "aria-label": t("downloadFile", { name }), onclick: () => downloadFile(m.id, name) },
    t("download"),
  );
  const card = el(
    "div",
    { class: "file", "data-file": m.id },
    el("span", { class: "file-name" }, name),
    f ? el("span", { class: "file-size" }, formatSize(f.size)) : null,
    download,
  );
  if (entry.progress !== undefined) {
    card.append(el("progress", { max: 1, value: entry.progress, "aria-label": t("fetching", { name }) }));
  }
  if (entry.preview) {
    return el("div", {}, card, el("img", { class: "preview", src: entry.preview, alt: t("previewOf", { name }), onload: keepBottom }));
  }
  return card;
}

// keepBottom keeps the list at its newest message when an image loaded
// below it grows the list.
function keepBottom(e) {
  const box = $("messages");
  if (box.scrollHeight - box.scrollTop - box.clientHeight < 40 + e.target.offsetHeight) box.scrollTop = box.scrollHeight;
}

function fileEntry(id) {
  let entry = state.files.get(id);
  if (entry) return entry;
  entry = {};
  state.files.set(id, entry);
  api("GET", `/api/files/${encodeURIComponent(id)}`)
    .then(async (f) => {
      entry.info = f;
      if (f.type.startsWith("image/") && f.size <= PREVIEW_MAX) {
        const blob = await fetchFile(id, f.type, null);
        entry.preview = URL.createObjectURL(blob);
      }
      rerenderFile(id);
    })
    .catch(() => {}); // still shown by name; the download button says what fails
  return entry;
}

// rerenderFile redraws one file message in place, if it is on screen.
function rerenderFile(id) {
  const card = $("messages").querySelector(`[data-file="${CSS.escape(id)}"]`);
  if (!card) return;
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const body = card.closest(".body");
  const m = (state.messages.get(state.current) || []).find((x) => x.id === id);
  if (body && m) body.replaceChildren(renderFile(m));
  if (atBottom) box.scrollTop = box.scrollHeight;
}

// fetchFile reads a file's bytes through the API, with the session's
// Authorization header, which a plain link could not send. onProgress gets
// the fraction read so far.
async function fetchFile(id, type, onProgress) {
  const res = await fetch(`/api/files/${encodeURIComponent(id)}/content`, {
    headers: { Authorization: "Bearer " + state.token },
    cache: "no-store",
  });
  if (res.status === 401) loggedOut(t("loginUsed"));
  if (!res.ok) {
    const data = await res.json().catch(() => ({}));
    throw new APIError(res.status, data.error, data.hint);
  }
  const total = Number(res.headers.get("Content-Length")) || 0;
  const reader = res.body.getReader();
  const parts = [];
  let got = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
    got += value.length;
    if (onProgress && total) onProgress(got / total);
  }
  return new Blob(parts, { type: type || "application/octet-stream" });
}

async function downloadFile(id, name) {
  const entry = fileEntry(id);
  entry.progress = 0;
  rerenderFile(id);
  try {
    const blob = await fetchFile(id, "application/octet-stream", (p) => {
      entry.progress = p;
      const bar = $("messages").querySelector(`[data-file="${CSS.escape(id)}"] progress`);
      if (bar) bar.value = p;
    });
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (err) {
    showError(t("downloadFailed", { name, error: err.message }));
  } finally {
    delete entry.progress;
    rerenderFile(id);
  }
}

// uploadFile sends a file's bytes to the current room. XMLHttpRequest
// reports upload progress and can send the Authorization header; fetch
// with a streamed body needs HTTP/2, which the node does not speak.
function uploadFile(file) {
  const room = state.current;
  if (!room) return;
  const up = { name: file.name, loaded: 0, total: file.size };
  state.uploads.push(up);
  renderUploads();
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/api/rooms/${encodeURIComponent(room)}/upload?name=${encodeURIComponent(file.name)}`);
  xhr.setRequestHeader("Authorization", "Bearer " + state.token);
  xhr.setRequestHeader("Content-Type", "application/octet-stream");
  xhr.upload.addEventListener("progress", (e) => {
    up.loaded = e.loaded;
    up.total = e.total || file.size;
    renderUploads();
  });
  const done = async () => {
    state.uploads = state.uploads.filter((u) => u !== up);
    renderUploads();
    let data = {};
    try {
      data = JSON.parse(xhr.responseText);
    } catch {}
    if (xhr.status === 401) return loggedOut(t("loginUsed"));
    if (xhr.status !== 201) {
      return showError(t("uploadFailed", { name: file.name, error: data.error || t("nodeLost") }));
    }
    // The message also arrives on the event stream; this covers a room
    // made by this very file, and a stream that is reconnecting.
    if (!state.rooms.has(data.room)) await refreshRooms().catch(() => {});
    if (state.current === room && room !== data.room) await selectRoom(data.room);
    const list = state.messages.get(data.room);
    if (list && !list.some((m) => m.id === data.id)) {
      await loadRoom(data.room, state.limits.get(data.room) || PAGE).catch(() => {});
      if (state.current === data.room) renderMessages({ stick: true });
    }
  };
  xhr.addEventListener("loadend", done);
  xhr.send(file);
}

function renderUploads() {
  $("uploads").replaceChildren(
    ...state.uploads.map((u) =>
      el(
        "li",
        {},
        el("span", {}, t("uploading", { name: u.name })),
        el("progress", { max: u.total || 1, value: u.loaded, "aria-label": t("uploading", { name: u.name }) }),
      ),
    ),
  );
}

function hasFiles(e) {
  return e.dataTransfer && [...e.dataTransfer.types].includes("Files");
}

function wireFiles() {
  $("attach").addEventListener("click", () => $("file-input").click());
  $("file-input").addEventListener("change", (e) => {
    for (const f of e.target.files) uploadFile(f);
    e.target.value = "";
  });
  const room = document.querySelector(".room");
  let depth = 0; // dragenter and dragleave fire for every child crossed
  room.addEventListener("dragenter", (e) => {
    if (!hasFiles(e) || !state.current) return;
    e.preventDefault();
    depth++;
    $("drop-hint").hidden = false;
  });
  room.addEventListener("dragover", (e) => {
    if (!hasFiles(e) || !state.current) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  room.addEventListener("dragleave", () => {
    if (--depth <= 0) {
      depth = 0;
      $("drop-hint").hidden = true;
    }
  });
  room.addEventListener("drop", (e) => {
    depth = 0;
    $("drop-hint").hidden = true;
    if (!hasFiles(e) || !state.current) return;
    e.preventDefault();
    for (const f of e.dataTransfer.files) uploadFile(f);
  });
}

// ---- start ---------------------------------------------------------------

function wire() {
  $("composer").addEventListener("submit", send);
  $("search-form").addEventListener("submit", search);
  $("close-results").addEventListener("click", closeResults);
  $("search").addEventListener("keydown", (e) => {
    if (e.key === "Escape") closeResults();
  });
  wireFiles();
  const box = $("text");
  box.addEventListener("input", autosize);
  box.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && (state.replyTo || state.editing)) {
      e.preventDefault();
      cancelCompose();
    }
    if (e.key === "ArrowUp" && !box.value && !state.editing) {
      const mine = (state.messages.get(state.current) || []).filter(
        (m) => state.status && m.author === state.status.peer_id && m.kind === "text" && !m.deleted,
      );
      if (mine.length) {
        e.preventDefault();
        startEdit(mine[mine.length - 1]);
      }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.altKey && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      moveRoom(e.key === "ArrowDown" ? 1 : -1);
    }
  });
  $("messages").addEventListener("scroll", () => {
    if ($("messages").scrollTop < 80) loadOlder();
  });
  $("language").addEventListener("change", (e) => {
    state.lang = catalogues.find((c) => c.code === e.target.value) || catalogues[0];
    localStorage.setItem(LANG_KEY, state.lang.code);
    renderAll();
  });
  $("toggle-members").addEventListener("click", () => {
    state.showMembers = !state.showMembers;
    $("app").classList.toggle("members-hidden", !state.showMembers);
    renderHeader();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.current) {
      state.unread.delete(state.current);
      renderRooms();
      renderTitle();
    }
  });
  $("sidebar").title = t("nextRoom");
}

async function main() {
  state.lang = pickLanguage();
  applyStrings();
  wire();
  if (!(await login())) return;
  $("login").hidden = true;
  $("app").hidden = false;
  renderAll();
  listen(); // subscribe first, so nothing sent while loading is missed
  try {
    await refreshStatus();
    await refreshRooms();
  } catch (err) {
    if (state.token) showError(t("loadFailed", { error: err.message }));
  }
  setInterval(() => {
    if (state.token) refreshStatus().catch(() => {});
  }, POLL_MS);
}

main();
