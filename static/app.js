// Undersigned's small progressive enhancements. Every page works without this file.
document.addEventListener("htmx:configRequest", (event) => {
  // htmx requests that change data carry the CSRF token from the page's meta tag.
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers["X-CSRFToken"] = meta.content;
});
// "Copy" buttons: data-copy names the input whose text goes to the clipboard (the link stays selectable without JS).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  const source = button && document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.value).then(() => { button.textContent = "Copied"; });
});
document.addEventListener("change", (event) => {
  // Picking an organization under the contact form's box puts its name in the box.
  const pick = event.target.closest('input[name="organization_id"][data-name]');
  const box = pick && document.getElementById("organization");
  if (box) box.value = pick.dataset.name;
});
