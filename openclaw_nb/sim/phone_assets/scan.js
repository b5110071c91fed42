// The scan page: the phone's side of a QR login (scan, confirm, expire), then the page loads again.
const qrcode = document.body.dataset.qrcode;
const here = location.pathname.replace(/\/+$/, "");
const root = here.slice(0, here.lastIndexOf("/scan/"));
const params = new URLSearchParams(location.search);
async function act(what) {
  const headers = {"Content-Type": "application/json"};
  if (params.get("admin_token")) headers["X-Admin-Token"] = params.get("admin_token");
  const extra = params.get("code") ? "?code=" + encodeURIComponent(params.get("code")) : "";
  let r;
  try {
    r = await fetch(root + "/qrcodes/" + encodeURIComponent(qrcode) + "/" + what + extra, {method: "POST",
      headers: headers, credentials: "same-origin", body: JSON.stringify({user_id: $("user").value})});
  } catch (e) { showError("the simulator cannot be reached: " + e); return; }
  let j = {};
  try { j = await r.json(); } catch (e) { j = {error: "HTTP " + r.status}; }
  if (!r.ok) { showError(j.error || ("HTTP " + r.status)); return; }
  location.reload();
}
for (const what of ["scan", "confirm", "expire"]) if ($(what)) $(what).addEventListener("click", () => act(what));
