// The chat page: live messages over server-sent events, sending text, quotes, photos and files.
const MAX_UPLOAD = Number(document.body.dataset.maxUpload);
const here = location.pathname.replace(/\/+$/, "");
const key = new URLSearchParams(location.search).get("k") || "";
const q = key ? "?k=" + encodeURIComponent(key) : "";
const list = $("list");
const seen = new Set();
let quoting = null, menuFor = null, typingTimer = null;

function url(tail, extra) {
  const params = new URLSearchParams();
  if (key) params.set("k", key);
  for (const [k, v] of Object.entries(extra || {})) params.set(k, v);
  const s = params.toString();
  return here + "/" + tail + (s ? "?" + s : "");
}
function size(n) { return n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(0) + " KB" : (n / 1048576).toFixed(1) + " MB"; }
function setStatus(text) { $("status").textContent = text; }
function setTyping(on, ms) {
  clearTimeout(typingTimer);
  $("typing").hidden = !on;
  if (on) typingTimer = setTimeout(() => { $("typing").hidden = true; }, ms || 10000);
}
function item(it) {
  if (it.kind === "text") { const t = el("div", "text", it.text); t.dataset.testid = "bubble-text"; return t; }
  if (it.kind === "image") {
    const img = el("img"); img.alt = "photo"; img.src = url(it.src); img.dataset.testid = "bubble-image"; return img;
  }
  if (it.kind === "file") {
    const label = it.name + (typeof it.size === "number" ? " (" + size(it.size) + ")" : "");
    const a = el(it.src ? "a" : "span", "file", label);
    if (it.src) { a.href = url(it.src); a.download = it.name; }
    a.dataset.testid = "bubble-file"; return a;
  }
  if (it.kind === "voice") {
    const v = el("div", "voice", "Voice: " + (it.text || "(no transcript)")); v.dataset.testid = "bubble-voice"; return v;
  }
  if (it.kind === "video") {
    const a = el("a", "video", "Video"); a.href = url(it.src); a.dataset.testid = "bubble-video"; return a;
  }
  const n = el("div", "note", it.text || "[message]"); n.dataset.testid = "bubble-note"; return n;
}
function render(m) {
  if (seen.has(m.id)) return;
  seen.add(m.id);
  const row = el("div", "row " + (m.dir === "out" ? "out" : "in"));
  row.dataset.testid = "bubble"; row.dataset.dir = m.dir; row.dataset.messageId = m.id;
  const b = el("div", "bubble"); b.dataset.testid = m.dir === "out" ? "bubble-out" : "bubble-in";
  if (m.quote) {
    const qd = el("div", "quote" + (m.quote.partial ? " partial" : ""), m.quote.text);
    qd.dataset.testid = "bubble-quote"; b.append(qd);
  }
  for (const it of m.items) b.append(item(it));
  if (m.time_ms) b.append(el("div", "time", new Date(m.time_ms).toLocaleTimeString()));
  b.addEventListener("click", (ev) => {
    ev.stopPropagation();
    menuFor = m;
    const menu = $("menu"); menu.hidden = false;
    menu.style.left = Math.min(ev.clientX, window.innerWidth - 90) + "px";
    menu.style.top = ev.clientY + "px";
  });
  row.append(b);
  const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(row);
  if (atEnd || m.dir === "out") list.scrollTop = list.scrollHeight;
}
function summary(m) {
  const t = m.items.find((it) => it.kind === "text");
  if (t) return t.text;
  const f = m.items[0] || {};
  return f.kind === "image" ? "[photo]" : f.kind === "file" ? "[file] " + f.name : "[" + (f.kind || "message") + "]";
}
document.addEventListener("click", () => { $("menu").hidden = true; });
$("quote").addEventListener("click", (ev) => {
  ev.stopPropagation();
  $("menu").hidden = true;
  if (!menuFor) return;
  quoting = menuFor;
  $("quoting-text").textContent = "Quoting: " + summary(quoting);
  $("quoting").hidden = false;
  $("composer").focus();
});
function clearQuote() { quoting = null; $("quoting").hidden = true; $("quoting-text").textContent = ""; }
$("unquote").addEventListener("click", clearQuote);
$("form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = $("composer").value;
  if (!text.trim()) return;
  const body = {text: text};
  if (quoting) body.quote = quoting.id;
  $("send").disabled = true;
  const j = await call(url("send"), JSON.stringify(body));
  $("send").disabled = false;
  if (j) { $("composer").value = ""; clearQuote(); }
});
$("composer").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); $("form").requestSubmit(); }
});
$("attach").addEventListener("change", async () => {
  const f = $("attach").files[0];
  $("attach").value = "";
  if (!f) return;
  if (f.size > MAX_UPLOAD) { showError(f.name + " is " + size(f.size) + ": a phone page sends up to " + size(MAX_UPLOAD)); return; }
  const kind = f.type.startsWith("image/") ? "image" : "file";
  await call(url("upload", {kind: kind, name: f.name}), f, "application/octet-stream");
});
function connect() {
  const es = new EventSource(url("events"));
  es.addEventListener("hello", (e) => {
    const d = JSON.parse(e.data);
    list.replaceChildren(); seen.clear(); clearQuote(); setTyping(false);
    $("peer").textContent = d.bot || "no bot has logged in yet";
    setStatus("connected");
  });
  es.addEventListener("msg", (e) => render(JSON.parse(e.data)));
  es.addEventListener("typing", (e) => { const d = JSON.parse(e.data); setTyping(d.on, d.timeout_ms); });
  es.addEventListener("bye", (e) => {
    es.close();
    // After a reset the page connects again: the server checks its link anew (an old class link is refused).
    if (JSON.parse(e.data).again) { setStatus("reconnecting…"); setTimeout(connect, 500); }
    else setStatus("the simulator stopped");
  });
  es.onopen = () => setStatus("connected");
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) { setStatus("disconnected"); showError("the stream was refused: reload the page from your link"); }
    else setStatus("reconnecting…");
  };
}
connect();
