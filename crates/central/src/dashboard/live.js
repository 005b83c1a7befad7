// The dashboard's live updates: on each change the central system announces (server-sent
// events at /events), at most once a second, the page is fetched again and each region marked
// data-live is replaced by its new content. Forms are outside those regions, so what an
// operator is typing stays. A region with data-watch="pile ID" (or "campaign ID") is only
// refreshed for changes of that pile (or campaign).
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
  // Closed when the page goes, so that it does not hold one of the browser's few connections
  // to this server while the next page loads.
  window.addEventListener("pagehide", function () { source.close(); });
  function concerns(what) {
    var regions = document.querySelectorAll("[data-live]");
    for (var i = 0; i < regions.length; i++) {
      var watch = regions[i].getAttribute("data-watch");
      if (!watch || what === "*" || what === watch || what.indexOf(watch + " ") === 0) {
        return true;
      }
    }
    return false;
  }
  source.addEventListener("change", function (event) {
    if (pending || !concerns(event.data || "*")) { return; }
    pending = true;
    setTimeout(refresh, Math.max(0, 1000 - (Date.now() - last)));
  });
})();
