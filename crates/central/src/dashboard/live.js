// The dashboard's live updates: on each change the central system announces (server-sent
// events at /events), at most once a second, the page is fetched again and each region marked
// data-live is replaced by its new content. Forms are outside those regions, so what an
// operator is typing stays.
(function () {
  "use strict";
  if (!window.EventSource || !document.querySelector("[data-live]")) {
    return;
  }
  var pending = false;
  var last = 0;
  function refresh() {
    pending = false;
    last = Date.now();
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (old) {
          var next = fresh.getElementById(old.id);
          if (next) { old.replaceWith(next); }
        });
        document.body.setAttribute("data-refreshed", String(last));
      })
      .catch(function () {});
  }
  var source = new EventSource("/events");
  source.addEventListener("change", function () {
    if (pending) { return; }
    pending = true;
    setTimeout(refresh, Math.max(0, 1000 - (Date.now() - last)));
  });
})();
