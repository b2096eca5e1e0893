// charla's web UI: one page that reads and writes through the node's local
// API (docs/API.md). It has no framework and no build step. User text only
// ever reaches the page as text nodes (see renderText), never as HTML.
import { catalogues } from "./i18n/index.js";

const SESSION_KEY = "charla.session"; // sessionStorage: gone with the tab
const LANG_KEY = "charla.lang"; // localStorage: a preference, not a secret
const INPUT_KEY = "charla.input"; // localStorage: when the user last touched any tab of this node
const PAGE = 50; // messages fetched per step back through history
const JUMP_PAGE = 500; // messages fetched per step back when looking for a search result
const MAX_LIMIT = 10000; // the API's MaxLogLimit
const POLL_MS = 10000; // status, members, peers and rooms
const RETRY_MS = 2000; // reconnecting the event stream
const GROUP_MS = 5 * 60 * 1000; // messages closer than this share one header
const SYNC_STALE_MS = 30000; // a catch-up not heard of for this long is over
const SEARCH_LIMIT = 50; // results one search shows
const PREVIEW_MAX = 16 << 20; // images up to this size are previewed; the node's auto-download size
const REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "🙏"]; // the reactions offered
const TYPING_EVERY_MS = 3000; // the node sends one typing signal per room in this time
const TYPING_SHOWN_MS = 6000; // "… is typing" lasts this long after a signal
const IDLE_MS = 5 * 60 * 1000; // no input for this long: away
const NOTIFY_RECENT_MS = 10 * 60 * 1000; // older messages (caught up) notify nobody
const MENTION_CHOICES = 8; // members offered after @

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  lang: null, // a catalogue
  status: null,
  rooms: new Map(), // room ID → node.Room
  current: null, // a room ID, or "@<peer ID>" for a direct room not yet made
  pendingDirect: null, // {id, name} while current is such a room
  messages: new Map(), // room ID → [node.Message], in the API's order: the newest, and the pages above them read so far
  complete: new Set(), // rooms whose whole history is loaded
  unread: new Map(), // room ID → count
  mentioned: new Set(), // rooms with an unread message that mentions me
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
  managing: null, // the peer ID whose admin tools are open in the members panel
  typing: new Map(), // room ID → Map(peer ID → {name, until})
  typingSent: new Map(), // room ID → when we last told the node we type there
  reads: new Map(), // room ID → Map(peer ID → node.ReadMarker)
  readSent: new Map(), // room ID → the message we last said we read
  away: false, // what we last told the node
  lastInput: Date.now(),
  mention: null, // the @ autocomplete: {start, query, choices, index}
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
  for (const el of document.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
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
  if (ev.type === "typing" && ev.typing) onTyping(ev.typing);
  if (ev.type === "read" && ev.read) onRead(ev.read);
  if (ev.type === "presence" && ev.presence) onPresence(ev.presence);
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
  const mine = isMine(m);
  const seen = m.room === state.current && !document.hidden;
  if (!mine && !seen) {
    state.unread.set(m.room, (state.unread.get(m.room) || 0) + 1);
    if (mentionsMe(m)) state.mentioned.add(m.room);
  }
  if (!mine) notify(m);
  stopTyping(m.room, m.author);
  if (m.room === state.current) {
    renderMessages({ stick: mine });
    markRead();
  }
  renderRooms();
  renderTitle();
}

function isMine(m) {
  return !!state.status && m.author === state.status.peer_id;
}

// mentionsMe says whether the node found an @mention of this member in m.
function mentionsMe(m) {
  return !!state.status && !m.deleted && (m.mentions || []).includes(state.status.peer_id);
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
  renderSelf();
  renderMembers();
  renderBanners();
  renderTitle();
}

async function refreshAfterGap() {
  await refreshRooms().catch(() => {});
  if (state.current && state.rooms.has(state.current)) await reloadRoom(state.current);
}

// loadRoom fetches the newest limit messages of a room: its first page,
// or, after the event stream was lost, as many as were shown.
async function loadRoom(room, limit = PAGE) {
  limit = Math.min(MAX_LIMIT, Math.max(PAGE, limit));
  const msgs = await api("GET", messagesPath(room, limit));
  state.messages.set(room, msgs);
  if (msgs.length < limit) state.complete.add(room);
  else state.complete.delete(room);
}

// reloadRoom fetches a room's newest messages again, as many as it shows.
function reloadRoom(room) {
  return loadRoom(room, (state.messages.get(room) || []).length);
}

// loadPage fetches the page of history just above the oldest message held
// of a room (GET …/messages?before=ID), so that reading back costs one page
// at a time however long the history is. It reports whether it got any.
async function loadPage(room, size = PAGE) {
  const list = state.messages.get(room);
  if (!list || !list.length) {
    state.complete.add(room);
    return false;
  }
  const oldest = list[0].id;
  const page = await api("GET", messagesPath(room, size) + "&before=" + encodeURIComponent(oldest));
  const now = state.messages.get(room); // a reload may have replaced the list meanwhile
  if (now[0] && now[0].id === oldest) {
    const held = new Set(now.slice(0, page.length).map((m) => m.id));
    now.unshift(...page.filter((m) => !held.has(m.id)));
  } else {
    for (const m of page) insertMessage(now, m);
  }
  if (page.length < size) state.complete.add(room);
  return page.length > 0;
}

// loadOlder shows the page above the oldest message shown when the reader
// scrolls to the top, keeping in place what they were looking at.
async function loadOlder() {
  const room = state.current;
  if (state.loadingOlder || !state.rooms.has(room) || state.complete.has(room) || !state.messages.has(room)) return;
  state.loadingOlder = true;
  const box = $("messages");
  let anchor = anchorOf(box);
  renderMessages({ keep: true });
  restoreAnchor(box, anchor);
  try {
    await loadPage(room);
  } catch (err) {
    showError(t("loadFailed", { error: err.message }));
  } finally {
    state.loadingOlder = false;
  }
  if (room !== state.current) return;
  anchor = anchorOf(box);
  renderMessages({ keep: true });
  restoreAnchor(box, anchor);
  // A short page may leave the list at the top, where no scroll follows.
  if (box.scrollTop < 80 && !state.complete.has(room)) setTimeout(loadOlder, 0);
}

// anchorOf is the first message in view and how far below the top of the
// view it starts; restoreAnchor scrolls it back there after a redraw.
function anchorOf(box) {
  const top = box.getBoundingClientRect().top;
  for (const a of box.querySelectorAll("article[data-id]")) {
    const r = a.getBoundingClientRect();
    if (r.bottom > top) return { id: a.dataset.id, offset: r.top - top };
  }
  return null;
}

function restoreAnchor(box, anchor) {
  const a = anchor && box.querySelector(`article[data-id="${CSS.escape(anchor.id)}"]`);
  if (a) box.scrollTop += a.getBoundingClientRect().top - box.getBoundingClientRect().top - anchor.offset;
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
  state.mentioned.delete(id);
  closeMentions();
  renderRooms();
  renderTitle();
  renderHeader();
  renderTyping();
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
  if (state.current !== id) return;
  loadReads(id);
  markRead();
  // A first page shorter than the view leaves nothing to scroll: read on.
  if ($("messages").scrollTop < 80) loadOlder();
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
    if (v === null || v === undefined) continue;
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
    const mentioned = n > 0 && state.mentioned.has(r.id);
    const b = el(
      "button",
      {
        type: "button",
        class: n ? "unread" : "",
        "data-room": r.id,
        "aria-current": String(r.id === state.current),
        "aria-label": n ? t(mentioned ? "unreadMentionIn" : "unreadIn", { room: name, count: n }) : name,
        onclick: () => (r.id === state.current ? $("text").focus() : selectRoom(r.id)),
      },
      el("span", { class: "name" }, name),
      n ? el("span", { class: mentioned ? "badge mention" : "badge", "aria-hidden": "true" }, (mentioned ? "@ " : "") + n.toLocaleString(state.lang.code)) : null,
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
    const seen = seenBy(list);
    for (const m of list) {
      const d = new Date(m.time);
      const newDay = !prev || new Date(prev.time).toDateString() !== d.toDateString();
      if (newDay) out.push(el("h2", { class: "day" }, dayLabel(d)));
      const first = newDay || prev.author !== m.author || d - new Date(prev.time) > GROUP_MS;
      out.push(renderMessage(m, first, seen.get(m.id)));
      prev = m;
    }
  }
  patchChildren(box, out);
  if (stick || (!keep && atBottom)) box.scrollTop = box.scrollHeight;
}

// patchChildren makes nodes the children of box, keeping each child that
// equals its replacement where it is. Every event redraws the list (a read
// marker, a delivery, a message); replacing every element lost the focus
// of a keyboard user on a message's button, and a click whose press and
// release fell on either side of a redraw did nothing, as the pressed
// button was gone.
function patchChildren(box, nodes) {
  const old = new Map();
  for (const c of box.children) old.set(nodeKey(c), c);
  const want = nodes.map((n) => {
    const o = old.get(nodeKey(n));
    return o && o.isEqualNode(n) ? o : n;
  });
  const keep = new Set(want);
  let cur = box.firstChild;
  for (const n of want) {
    while (cur && !keep.has(cur)) {
      const next = cur.nextSibling;
      cur.remove();
      cur = next;
    }
    if (n === cur) cur = cur.nextSibling;
    else box.insertBefore(n, cur);
  }
  while (cur) {
    const next = cur.nextSibling;
    cur.remove();
    cur = next;
  }
}

// nodeKey names a child of the message list: a message by its ID, a day
// heading or note by its text.
function nodeKey(n) {
  return n.dataset.id ? "id:" + n.dataset.id : n.tagName + ":" + n.textContent;
}

function renderMessage(m, first, seenNames) {
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
  const toMe = mentionsMe(m) && !isMine(m);
  const cls = ["msg", first ? "first" : "", m.id === state.found ? "found" : "", m.deleted ? "is-deleted" : "", toMe ? "mention-me" : ""]
    .filter(Boolean)
    .join(" ");
  return el(
    "article",
    { class: cls, "data-id": m.id, tabindex: "-1" },
    toMe ? el("span", { class: "visually-hidden" }, t("mentionsYou")) : null,
    renderActions(m),
    renderQuote(m),
    head,
    body,
    renderReactions(m),
    seenNames ? el("div", { class: "seen" }, t("seenBy", { names: listFormat(seenNames) })) : null,
  );
}

function listFormat(names) {
  try {
    return new Intl.ListFormat(state.lang.code, { type: "conjunction" }).format(names);
  } catch {
    return names.join(", ");
  }
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
    if (m.index > last) appendText(parent, text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[1] !== undefined) parent.append(el("code", {}, m[1]));
    else if (m[2] !== undefined) renderInline(m[2], parent.appendChild(el("strong")));
    else if (m[3] !== undefined) renderInline(m[3], parent.appendChild(el("em")));
    else if (m[4] !== undefined) renderInline(m[4], parent.appendChild(el("em")));
    else parent.append(el("a", { href: m[0], target: "_blank", rel: "noopener noreferrer" }, m[0]));
  }
  if (last < text.length) appendText(parent, text.slice(last));
}

// presenceOf is online, away or offline: what the node says, or, from a
// node that does not say, whether the member is connected.
function presenceOf(m) {
  if (m.presence) return m.presence;
  const self = state.status && state.status.peer_id;
  return m.peer_id === self || state.online.has(m.peer_id) ? "online" : "offline";
}

// renderMembers lists the members with their presence. An admin or the
// owner also gets, for each member ranked below them, a button that opens
// their tools: promote or demote, and remove.
function renderMembers() {
  const self = state.status && state.status.peer_id;
  const mine = RANK[myRole()] || 0;
  const items = state.members.map((m) => {
    const presence = presenceOf(m);
    const label = [m.name, m.peer_id === self ? t("you") : "", t(presence)].filter(Boolean).join(", ");
    const manageable = mine >= RANK.admin && m.peer_id !== self && (RANK[m.role] || 0) < mine;
    const open = state.managing === m.peer_id;
    return el(
      "li",
      {},
      el(
        "div",
        { class: "member" },
        el(
          "button",
          // A direct room needs another member: one's own entry opens nothing.
          { type: "button", "aria-label": label, title: m.peer_id, disabled: m.peer_id === self, onclick: () => openDirect(m) },
          el("span", { class: "dot " + presence, "aria-hidden": "true" }),
          el("span", { class: "member-name" }, m.name + (m.peer_id === self ? " " + t("you") : "")),
          m.role && m.role !== "member" ? el("span", { class: "role" }, t("role_" + m.role)) : null,
        ),
        manageable
          ? el(
              "button",
              {
                type: "button",
                class: "icon-button manage",
                "aria-label": t("manageMember", { name: m.name }),
                title: t("manageMember", { name: m.name }),
                "aria-expanded": String(open),
                onclick: () => {
                  state.managing = open ? null : m.peer_id;
                  renderMembers();
                },
              },
              "⋯",
            )
          : null,
      ),
      manageable && open
        ? el(
            "div",
            { class: "member-tools", role: "group", "aria-label": t("manageMember", { name: m.name }) },
            m.role === "admin"
              ? el("button", { type: "button", onclick: () => setRole(m, "member") }, t("makeMember"))
              : el("button", { type: "button", onclick: () => setRole(m, "admin") }, t("makeAdmin")),
            el("button", { type: "button", class: "danger", onclick: () => removeMember(m) }, t("removeMember")),
          )
        : null,
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

// renderSelf shows one's own name, which is also the button to change it.
function renderSelf() {
  const name = (state.status && state.status.name) || "";
  const b = $("self-name");
  b.textContent = name;
  b.setAttribute("aria-label", t("changeName", { name }));
  b.title = t("changeName", { name });
}

function renderAll() {
  applyStrings();
  renderSelf();
  renderNotifyButton();
  renderTyping();
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
    if (!state.messages.has(m.room)) await loadRoom(m.room);
    while (!state.messages.get(m.room).some((x) => x.id === m.id) && !state.complete.has(m.room)) {
      await loadPage(m.room, JUMP_PAGE);
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
      await reloadRoom(data.room).catch(() => {});
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

// ---- typing, read markers and presence ------------------------------------

// noteTyping tells the node that the user types in the current room, at
// most once per TYPING_EVERY_MS (the node bounds it too).
function noteTyping() {
  const room = state.current;
  if (!room || !state.rooms.has(room) || state.editing || !$("text").value.trim()) return;
  const now = Date.now();
  if (now - (state.typingSent.get(room) || 0) < TYPING_EVERY_MS) return;
  state.typingSent.set(room, now);
  api("POST", `/api/rooms/${encodeURIComponent(room)}/typing`, {}).catch(() => {});
}

function onTyping(ev) {
  if (state.status && ev.peer === state.status.peer_id) return;
  let room = state.typing.get(ev.room);
  if (!room) state.typing.set(ev.room, (room = new Map()));
  room.set(ev.peer, { name: ev.name || ev.peer.slice(-8), until: Date.now() + TYPING_SHOWN_MS });
  setTimeout(renderTyping, TYPING_SHOWN_MS + 50);
  renderTyping();
}

// stopTyping ends a member's "typing" in a room: their message came.
function stopTyping(room, peer) {
  const r = state.typing.get(room);
  if (r && r.delete(peer)) renderTyping();
}

function renderTyping() {
  const now = Date.now();
  const names = [];
  for (const [peer, v] of state.typing.get(state.current) || []) {
    if (v.until > now) names.push(v.name);
    else state.typing.get(state.current).delete(peer);
  }
  let text = "";
  if (names.length === 1) text = t("typingOne", { name: names[0] });
  else if (names.length === 2) text = t("typingTwo", { name: names[0], other: names[1] });
  else if (names.length > 2) text = t("typingMany", { count: names.length });
  const line = $("typing");
  if (line.textContent !== text) line.textContent = text;
}

// atBottom says whether the message list shows its newest message.
function atBottom() {
  const box = $("messages");
  return box.scrollHeight - box.scrollTop - box.clientHeight < 40;
}

// markRead tells the node the newest message of the current room has been
// seen: the page is visible and the list is at its end.
function markRead() {
  const room = state.current;
  const list = state.messages.get(room);
  if (!room || !list || !list.length || document.hidden || !atBottom()) return;
  const newest = list[list.length - 1];
  if (state.readSent.get(room) === newest.id) return;
  state.readSent.set(room, newest.id);
  api("POST", `/api/rooms/${encodeURIComponent(room)}/read`, { message: newest.id })
    .then((rs) => setReads(room, rs))
    .catch(() => state.readSent.delete(room));
}

async function loadReads(room) {
  try {
    setReads(room, await api("GET", `/api/rooms/${encodeURIComponent(room)}/read`));
  } catch {
    // "Seen by" is a nicety; the room works without it.
  }
}

function setReads(room, rs) {
  const m = new Map();
  for (const r of rs.members || []) m.set(r.peer, r);
  state.reads.set(room, m);
  if (room === state.current) renderMessages({});
}

function onRead(r) {
  let m = state.reads.get(r.room);
  if (!m) state.reads.set(r.room, (m = new Map()));
  m.set(r.peer, r);
  if (r.room === state.current) renderMessages({});
}

// seenBy maps each message ID of the current room to the names of the
// members whose read marker is at it (not its author's).
function seenBy(list) {
  const out = new Map();
  const reads = state.reads.get(state.current);
  if (!reads || !list) return out;
  const byID = new Map(list.map((m) => [m.id, m]));
  for (const r of reads.values()) {
    const m = byID.get(r.message);
    if (!m || m.author === r.peer || (state.status && r.peer === state.status.peer_id)) continue;
    const names = out.get(m.id) || [];
    names.push(memberName(r.peer) || r.name);
    out.set(m.id, names);
  }
  return out;
}

function memberName(peer) {
  const m = state.members.find((x) => x.peer_id === peer);
  return m ? m.name : "";
}

function onPresence(p) {
  // Another tab may have said so: this one then says "online" at its next input.
  if (state.status && p.peer === state.status.peer_id) state.away = p.state === "away";
  const m = state.members.find((x) => x.peer_id === p.peer);
  if (m) {
    m.presence = p.state;
    renderMembers();
  }
}

// watchIdle tells the node the user is away after IDLE_MS without input,
// and online again at the next input. Tabs of one node share the time of
// the last input in localStorage, so an idle tab does not call away a user
// who works in another.
function watchIdle() {
  let shared = 0;
  const active = () => {
    const now = Date.now();
    state.lastInput = now;
    if (now - shared > 10000) {
      shared = now;
      localStorage.setItem(INPUT_KEY, String(now));
    }
    if (state.away) setAway(false);
  };
  for (const type of ["keydown", "pointerdown", "pointermove", "wheel", "touchstart", "focus"]) {
    window.addEventListener(type, active, { passive: true, capture: true });
  }
  setInterval(() => {
    const last = Math.max(state.lastInput, Number(localStorage.getItem(INPUT_KEY)) || 0);
    if (!state.away && Date.now() - last >= IDLE_MS) setAway(true);
  }, 15000);
}

function setAway(away) {
  state.away = away;
  if (!state.token) return;
  api("POST", "/api/presence", { state: away ? "away" : "online" })
    .then(() => refreshStatus())
    .catch(() => {
      state.away = !away; // try again at the next input or tick
    });
}

// ---- notifications -------------------------------------------------------

function canNotify() {
  return "Notification" in window && Notification.permission === "granted";
}

// askNotifications asks the browser for permission: browsers allow it
// only from a click or a key, so it is a button.
async function askNotifications() {
  try {
    await Notification.requestPermission();
  } catch {
    // An old Safari takes a callback instead; the button stays.
  }
  renderNotifyButton();
}

function renderNotifyButton() {
  const b = $("notify");
  b.hidden = !("Notification" in window) || Notification.permission !== "default";
}

// notify shows a browser notification for a direct message or a mention
// the user is not looking at. Messages caught up from long ago stay quiet.
async function notify(m) {
  if (!canNotify() || m.deleted) return;
  // The first message of a new direct room comes before the room is listed.
  if (!state.rooms.has(m.room)) await refreshRooms().catch(() => {});
  const room = state.rooms.get(m.room);
  const direct = room && room.kind === "direct";
  if (!(direct || mentionsMe(m))) return;
  if (m.room === state.current && !document.hidden && document.hasFocus()) return;
  if (Date.now() - new Date(m.time).getTime() > NOTIFY_RECENT_MS) return;
  const who = m.author_name || m.author.slice(-8);
  const title = direct ? who : t("mentionedBy", { name: who, room: roomName(room) || m.room_name });
  try {
    const n = new Notification(title, { body: quote(m.kind === "file" ? t("sentFile", { name: m.text }) : m.text), tag: m.room, lang: state.lang.code });
    n.onclick = () => {
      window.focus();
      selectRoom(m.room);
      n.close();
    };
  } catch {
    // Some browsers allow notifications only from a service worker.
  }
}

// ---- @mentions -----------------------------------------------------------

const WORD = /[\p{L}\p{N}_]/u;

// findMentions returns where text mentions members, by the node's rule
// (node/mentions.go): "@" not after a letter, digit or _, then a member's
// name in any case not followed by one; the longest name wins.
function findMentions(text) {
  const out = [];
  if (!text.includes("@")) return out;
  const names = [...new Set(state.members.map((m) => m.name).filter(Boolean))].sort((a, b) => b.length - a.length);
  const self = state.status && memberName(state.status.peer_id);
  for (let i = text.indexOf("@"); i >= 0; i = text.indexOf("@", i + 1)) {
    if (i > 0 && WORD.test(text[i - 1])) continue;
    const rest = text.slice(i + 1);
    const name = names.find(
      (n) => rest.length >= n.length && rest.slice(0, n.length).toLowerCase() === n.toLowerCase() && !WORD.test(rest[n.length] || ""),
    );
    if (!name) continue;
    out.push({ start: i, end: i + 1 + name.length, me: !!self && name.toLowerCase() === self.toLowerCase() });
    i += name.length;
  }
  return out;
}

// appendText writes plain text into parent with its mentions marked.
function appendText(parent, text) {
  let last = 0;
  for (const m of findMentions(text)) {
    if (m.start > last) parent.append(text.slice(last, m.start));
    parent.append(el("span", { class: m.me ? "mention me" : "mention" }, text.slice(m.start, m.end)));
    last = m.end;
  }
  if (last < text.length) parent.append(text.slice(last));
}

// mentionQuery finds an "@name" being typed just before the caret.
function mentionQuery(box) {
  const before = box.value.slice(0, box.selectionStart);
  const at = before.lastIndexOf("@");
  if (at < 0 || (at > 0 && WORD.test(before[at - 1]))) return null;
  const query = before.slice(at + 1);
  if (query.length > 40 || /[\n@]/.test(query) || /^\s/.test(query)) return null;
  return { start: at, query };
}

function updateMentions() {
  const box = $("text");
  const q = box.selectionStart === box.selectionEnd ? mentionQuery(box) : null;
  if (!q) return closeMentions();
  const self = state.status && state.status.peer_id;
  const want = q.query.toLowerCase();
  const choices = state.members
    .filter((m) => m.peer_id !== self && m.name.toLowerCase().startsWith(want))
    .sort((a, b) => a.name.localeCompare(b.name, state.lang.code))
    .slice(0, MENTION_CHOICES);
  if (!choices.length) return closeMentions();
  const index = state.mention ? Math.min(state.mention.index, choices.length - 1) : 0;
  state.mention = { ...q, choices, index };
  renderMentions();
}

function renderMentions() {
  const list = $("mention-list");
  const box = $("text");
  const mn = state.mention;
  if (!mn) {
    list.hidden = true;
    list.replaceChildren();
    box.removeAttribute("aria-activedescendant");
    return;
  }
  list.replaceChildren(
    ...mn.choices.map((m, i) =>
      el(
        "li",
        {
          id: "mention-" + i,
          role: "option",
          "aria-selected": String(i === mn.index),
          class: i === mn.index ? "active" : "",
          // mousedown, not click: the composer keeps the focus.
          onmousedown: (e) => {
            e.preventDefault();
            pickMention(i);
          },
        },
        el("span", { class: "dot " + presenceOf(m), "aria-hidden": "true" }),
        m.name,
      ),
    ),
  );
  list.hidden = false;
  box.setAttribute("aria-activedescendant", "mention-" + mn.index);
}

function closeMentions() {
  if (!state.mention) return;
  state.mention = null;
  renderMentions();
}

function pickMention(i) {
  const mn = state.mention;
  const box = $("text");
  const m = mn.choices[i];
  const after = box.value.slice(box.selectionStart);
  const text = box.value.slice(0, mn.start) + "@" + m.name + (after.startsWith(" ") ? "" : " ");
  box.value = text + after;
  box.selectionStart = box.selectionEnd = text.length + (after.startsWith(" ") ? 1 : 0);
  closeMentions();
  autosize();
}

// mentionKey handles the keys of the open @ list; it reports whether it did.
function mentionKey(e) {
  const mn = state.mention;
  if (!mn) return false;
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    mn.index = (mn.index + (e.key === "ArrowDown" ? 1 : -1) + mn.choices.length) % mn.choices.length;
    renderMentions();
  } else if ((e.key === "Enter" && !e.shiftKey) || e.key === "Tab") {
    pickMention(mn.index);
  } else if (e.key === "Escape") {
    closeMentions();
  } else {
    return false;
  }
  e.preventDefault();
  return true;
}

// ---- office tasks: rooms, invites, members, one's name ---------------------

function myRole() {
  const me = state.status && state.members.find((x) => x.peer_id === state.status.peer_id);
  return me ? me.role : "";
}

const RANK = { member: 1, admin: 2, owner: 3 };

function openDialog(id) {
  const d = $(id);
  d.querySelector(".dialog-error").hidden = true;
  d.showModal();
}

function dialogError(id, text) {
  const e = $(id).querySelector(".dialog-error");
  e.textContent = text;
  e.hidden = !text;
}

function openRoomDialog() {
  const self = state.status && state.status.peer_id;
  $("room-name").value = "";
  $("room-all").checked = true;
  $("room-pick").replaceChildren(
    ...state.members
      .filter((m) => m.peer_id !== self)
      .map((m) =>
        el("label", {}, el("input", { type: "checkbox", value: m.peer_id, name: "member" }), " ", m.name),
      ),
  );
  pickWhoChanged();
  openDialog("room-dialog");
}

function pickWhoChanged() {
  $("room-pick").disabled = $("room-all").checked;
}

async function createRoom(e) {
  e.preventDefault();
  const name = $("room-name").value.trim().replace(/^#/, "");
  if (!name) return dialogError("room-dialog", t("roomNameNeeded"));
  const body = { name };
  if ($("room-all").checked) body.all = true;
  else body.members = [...$("room-pick").querySelectorAll("input:checked")].map((i) => i.value);
  try {
    const room = await api("POST", "/api/rooms", body);
    $("room-dialog").close();
    await refreshRooms();
    await selectRoom(room.id);
  } catch (err) {
    dialogError("room-dialog", t("createRoomFailed", { error: err.message }));
  }
}

function openInviteDialog() {
  // Only an admin may invite another admin.
  $("invite-role-row").hidden = (RANK[myRole()] || 0) < RANK.admin;
  $("invite-role").value = "member";
  $("invite-result").hidden = true;
  $("invite-code").value = "";
  $("copy-status").textContent = "";
  openDialog("invite-dialog");
}

async function createInvite(e) {
  e.preventDefault();
  try {
    const body = { expires: $("invite-expires").value };
    if ($("invite-role").value === "admin") body.role = "admin";
    const res = await api("POST", "/api/invites", body);
    $("invite-code").value = res.code;
    $("invite-join").textContent = "charla join " + res.code;
    $("invite-result").hidden = false;
    $("invite-code").select();
    $("copy-invite").focus();
  } catch (err) {
    dialogError("invite-dialog", t("inviteFailed", { error: err.message }));
  }
}

async function copyInvite() {
  const box = $("invite-code");
  try {
    await navigator.clipboard.writeText(box.value);
    $("copy-status").textContent = t("copied");
  } catch {
    box.focus();
    box.select();
    $("copy-status").textContent = t("copyByHand");
  }
}

function openNameDialog() {
  $("new-name").value = (state.status && state.status.name) || "";
  openDialog("name-dialog");
  $("new-name").select();
}

async function rename(e) {
  e.preventDefault();
  const name = $("new-name").value.trim();
  if (!name) return dialogError("name-dialog", t("nameNeeded"));
  try {
    await api("PUT", "/api/me", { name });
    $("name-dialog").close();
    await refreshStatus();
  } catch (err) {
    dialogError("name-dialog", t("renameFailed", { error: err.message }));
  }
}

// setRole and removeMember are the admin's tools of the members panel.
async function setRole(m, role) {
  try {
    await api("POST", `/api/members/${encodeURIComponent(m.peer_id)}/role`, { role });
    await refreshStatus();
  } catch (err) {
    showError(t("roleFailed", { name: m.name, error: err.message }));
  }
}

async function removeMember(m) {
  if (!window.confirm(t("confirmRemove", { name: m.name }))) return;
  try {
    await api("DELETE", `/api/members/${encodeURIComponent(m.peer_id)}`);
    await refreshStatus();
  } catch (err) {
    showError(t("removeFailed", { name: m.name, error: err.message }));
  }
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
  box.setAttribute("aria-autocomplete", "list");
  box.setAttribute("aria-controls", "mention-list");
  box.addEventListener("input", () => {
    autosize();
    updateMentions();
    noteTyping();
  });
  box.addEventListener("click", updateMentions);
  box.addEventListener("blur", closeMentions);
  box.addEventListener("keyup", (e) => {
    if (e.key === "ArrowLeft" || e.key === "ArrowRight" || e.key === "Home" || e.key === "End") updateMentions();
  });
  box.addEventListener("keydown", (e) => {
    if (mentionKey(e)) return;
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
    else if (atBottom()) markRead();
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
      state.mentioned.delete(state.current);
      renderRooms();
      renderTitle();
      markRead();
    }
  });
  $("sidebar").title = t("nextRoom");
  $("new-room").addEventListener("click", openRoomDialog);
  $("room-form").addEventListener("submit", createRoom);
  for (const r of document.querySelectorAll('input[name="room-who"]')) r.addEventListener("change", pickWhoChanged);
  $("invite").addEventListener("click", openInviteDialog);
  $("invite-form").addEventListener("submit", createInvite);
  $("copy-invite").addEventListener("click", copyInvite);
  $("self-name").addEventListener("click", openNameDialog);
  $("name-form").addEventListener("submit", rename);
  for (const b of document.querySelectorAll("dialog .cancel")) {
    b.addEventListener("click", () => b.closest("dialog").close());
  }
  $("notify").addEventListener("click", askNotifications);
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
  watchIdle();
  renderNotifyButton();
  try {
    await refreshStatus();
    await refreshRooms();
  } catch (err) {
    if (state.token) showError(t("loadFailed", { error: err.message }));
  }
  setInterval(() => {
    if (!state.token) return;
    refreshStatus().catch(() => {});
    // A room made by a colleague sends no event until its first message.
    refreshRooms().catch(() => {});
  }, POLL_MS);
}

main();
