// Small progressive enhancements; the console works without them.
// Confirmation for forms marked data-confirm (htmx requests use hx-confirm instead).
document.addEventListener("submit", (event) => {
  const form = event.target;
  const message = form.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
