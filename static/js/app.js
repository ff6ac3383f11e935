// Small progressive enhancements; the console works without them.
// Confirmation for forms marked data-confirm (htmx requests use hx-confirm instead).
document.addEventListener("submit", (event) => {
  const form = event.target;
  const message = form.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// Times are shown in the staff member's zone (their profile setting). Until they have one,
// save the browser's zone once, and reload so this page's times use it too.
(function () {
  const body = document.body;
  if (!body || body.dataset.timeZoneUnset !== "yes" || !window.fetch) return;
  let zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    return;
  }
  if (!zone) return;
  let token = "";
  try {
    token = JSON.parse(body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
  } catch (e) {
    token = "";
  }
  const data = new URLSearchParams({ time_zone: zone, from_browser: "yes", csrf_token: token });
  fetch(body.dataset.timeZoneUrl, {
    method: "POST",
    body: data,
    credentials: "same-origin",
    headers: { "X-CSRFToken": token },
  })
    .then(function (answer) { return answer.ok ? answer.json() : null; })
    .then(function (answer) {
      if (answer && answer.saved && zone !== "UTC") window.location.reload();
    })
    .catch(function () {});
})();
