// Undersigned's small progressive enhancements. Every page works without this file.
document.addEventListener("htmx:configRequest", (event) => {
  // htmx requests that change data carry the CSRF token from the page's meta tag.
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers["X-CSRFToken"] = meta.content;
});
