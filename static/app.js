// Undersigned's small progressive enhancements. Every page works without this file.
document.addEventListener("htmx:configRequest", (event) => {
  // htmx requests that change data carry the CSRF token from the page's meta tag.
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers["X-CSRFToken"] = meta.content;
});
document.addEventListener("change", (event) => {
  // Picking an organization under the contact form's box puts its name in the box.
  const pick = event.target.closest('input[name="organization_id"][data-name]');
  const box = pick && document.getElementById("organization");
  if (box) box.value = pick.dataset.name;
});
