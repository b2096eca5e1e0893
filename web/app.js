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
  box.value = "";
  autosize();
  try {
    const m = await api("POST", `/api/rooms/${encodeURIComponent(room)}/messages`, { text });
    if (!state.rooms.has(m.room)) await refreshRooms();
    if (!state.messages.has(m.room)) state.messages.set(m.room, []);
    insertMessage(state.messages.get(m.room), m);
    if (state.current === room && room !== m.room) await selectRoom(m.room);
    if (state.current === m.room) renderMessages({ stick: true });
  } catch (err) {
    if (!box.value) box.value = text; // give it back to edit or retry
    autosize();
    showError(t("sendFailed", { error: err.message }));
  }
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
  renderText(m.text, body);
  return el("article", { class: first ? "msg first" : "msg", "data-id": m.id }, head, body);
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

// ---- start ---------------------------------------------------------------

function wire() {
  $("composer").addEventListener("submit", send);
  const box = $("text");
  box.addEventListener("input", autosize);
  box.addEventListener("keydown", (e) => {
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
