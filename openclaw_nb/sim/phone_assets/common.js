// Helpers every phone page shares: element building and POSTs that show the server's error sentence.
"use strict";
const $ = (id) => document.getElementById(id);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function showError(text) { $("error").textContent = text || ""; }
async function call(url, body, type) {
  let r;
  try {
    r = await fetch(url, {method: "POST", body: body, headers: {"Content-Type": type || "application/json", "X-Phone": "1"},
                          credentials: "same-origin"});
  } catch (e) { showError("the simulator cannot be reached: " + e); return null; }
  let j = {};
  try { j = await r.json(); } catch (e) { j = {error: "HTTP " + r.status}; }
  if (!r.ok) { showError(j.error || ("HTTP " + r.status)); return null; }
  showError("");
  return j;
}
