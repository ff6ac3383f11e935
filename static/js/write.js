// Write-side forms: a second click on a submit button while the first request is on its
// way sends nothing (the server is double-submit safe as well: business ids and the
// approval lock). Loaded by the write-side templates; safe to load twice.
(function () {
  if (window.__estuaryWriteForms) return;
  window.__estuaryWriteForms = true;
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-once")) return;
    if (event.defaultPrevented) return; // a declined data-confirm
    if (form.dataset.submitted === "yes") {
      event.preventDefault();
      return;
    }
    form.dataset.submitted = "yes";
    // Disable after the browser has collected the form data (a disabled submitter would
    // drop its name=value from the request).
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit], input[type=submit]").forEach(function (b) {
        b.disabled = true;
      });
    }, 0);
  });
  // htmx swaps a form back in after a refusal: let it be submitted again.
  document.addEventListener("htmx:afterSwap", function (event) {
    const target = event.target;
    if (target && target.querySelectorAll) {
      target.querySelectorAll("form[data-once]").forEach(function (f) {
        delete f.dataset.submitted;
      });
    }
  });
})();

// htmx does not swap 4xx answers by default; the action forms' refusals (422 field
// messages, 409 the workflow said no) are meant to replace the form, so let them.
document.addEventListener("htmx:beforeSwap", function (event) {
  const status = event.detail.xhr.status;
  const elt = event.detail.elt;
  if ((status === 409 || status === 422) && elt && elt.closest && elt.closest("form.action-form")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
