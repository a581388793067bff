// Undersigned's small progressive enhancements. Every page works without this file.
document.addEventListener("htmx:configRequest", (event) => {
  // htmx requests that change data carry the CSRF token from the page's meta tag.
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers["X-CSRFToken"] = meta.content;
});

// Merge composer field picker (templates/mailmerge/form.html): "Insert" puts a field where the cursor is in the
// subject or the body, whichever was used last (the body at first). Without this file the list still shows every
// field to copy by hand.
document.addEventListener("DOMContentLoaded", () => {
  const picker = document.querySelector("[data-field-picker]");
  if (!picker) return;
  const subject = document.getElementById("subject");
  const body = document.getElementById("body");
  const status = document.getElementById("field-picker-status");
  let target = body;
  for (const input of [subject, body]) {
    if (input) input.addEventListener("focus", () => { target = input; });
  }
  document.querySelectorAll(".js-only").forEach((element) => { element.hidden = false; });
  picker.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-insert]");
    if (!button || !target) return;
    // The subject is one line: a multi-line snippet (the history loop) goes in on one line there.
    const text = target === subject ? button.dataset.insert.replace(/\n/g, " ") : button.dataset.insert;
    const start = target.selectionStart ?? target.value.length;
    const end = target.selectionEnd ?? start;
    target.setRangeText(text, start, end, "end");
    target.dispatchEvent(new Event("input", { bubbles: true }));
    target.focus();
    if (status) status.textContent = `Inserted ${text} into the ${target === subject ? "subject" : "body"}.`;
  });
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

// Error summaries (templates/_macros.html error_summary): a link puts the cursor in its field, not only the page at
// it (in a group of checkboxes, the first box), with the field's label in view. Without this file the link still
// scrolls there and the next Tab reaches the field.
document.addEventListener("click", (event) => {
  const link = event.target.closest(".error-summary a[href^='#']");
  const target = link && document.getElementById(decodeURIComponent(link.hash.slice(1)));
  const control = target && (target.matches("input, select, textarea") ? target
    : target.querySelector("input, select, textarea"));
  if (!control) return;
  event.preventDefault();
  (target.closest(".mb-3, fieldset") || target).scrollIntoView({ block: "start" });
  control.focus({ preventScroll: true });
});
