// The class-code form: a right code sets the class cookie, then the page opened loads again.
const base = location.pathname.replace(/\/+$/, "");
const phone = base.slice(0, base.lastIndexOf("/_sim/") + 5) + "/phone";
$("form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const done = await call(phone + "/code", JSON.stringify({code: $("code").value}));
  if (done) location.reload();
});
