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

// Live pages (dashboard/presentation/live.py): htmx polls (`hx-trigger="every …"`) are
// paused while the tab is hidden and resume, with one refresh at once, when it is shown
// again; a live region is not refreshed while someone types in one of its forms or has a
// form's fold open (the refresh would take their typing away); an answer that is the
// sign-in page (the session ended) is never swapped into a region.
(function () {
  function polls(elt) {
    const trigger = (elt && elt.getAttribute && elt.getAttribute("hx-trigger")) || "";
    return /(^|,)\s*every\s/.test(trigger);
  }
  function busy(region) {
    if (!region || region.getAttribute("data-live") !== "on") return false;
    const active = document.activeElement;
    if (active && active !== document.body && region.contains(active) && active.form) {
      if (active.matches("input:not([type=hidden]):not([type=submit]), textarea, select")) {
        return true;
      }
    }
    if (region.querySelector("form[data-submitted=yes]")) return true;
    if (region.querySelector("details[open] form")) return true;
    // Something typed or chosen and not sent yet.
    return Array.prototype.some.call(
      region.querySelectorAll("form input:not([type=hidden]), form textarea, form select"),
      function (field) {
        if (field.type === "checkbox" || field.type === "radio") {
          return field.checked !== field.defaultChecked;
        }
        if (field.tagName === "SELECT") {
          // Without a `selected` option the browser shows the first one.
          let shown = field.multiple ? -1 : 0;
          Array.prototype.forEach.call(field.options, function (o, i) {
            if (o.defaultSelected && shown <= 0) shown = i;
          });
          if (field.multiple) {
            return Array.prototype.some.call(field.options, function (o) {
              return o.selected !== o.defaultSelected;
            });
          }
          return field.selectedIndex !== shown;
        }
        return field.value !== field.defaultValue;
      }
    );
  }
  window.estuaryLive = { paused: 0, sent: 0 };
  document.addEventListener("htmx:beforeRequest", function (event) {
    const elt = event.detail.elt;
    if (!polls(elt)) return;
    const why = event.detail.requestConfig && event.detail.requestConfig.triggeringEvent;
    const resumed = why && why.type === "live-resume";
    if ((document.hidden && !resumed) || busy(elt)) {
      window.estuaryLive.paused += 1;
      event.preventDefault();
      return;
    }
    window.estuaryLive.sent += 1;
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    const xhr = event.detail.xhr;
    if (polls(event.detail.elt) && xhr && /\/auth\/login/.test(xhr.responseURL || "")) {
      event.detail.shouldSwap = false;
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !window.htmx) return;
    document.querySelectorAll('[hx-trigger*="live-resume"]').forEach(function (elt) {
      window.htmx.trigger(elt, "live-resume");
    });
  });
})();
