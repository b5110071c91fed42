// The picker: open an existing user's page, or create a user and go to its page.
const base = location.pathname.replace(/\/+$/, "");
for (const a of document.querySelectorAll("a[data-testid=user-link]"))
  a.href = base + "/" + a.dataset.link;
$("form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const j = await call(base + "/join", JSON.stringify({name: $("name").value}));
  if (j) location.href = base + "/" + j.link;
});
