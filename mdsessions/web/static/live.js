// The review desk's one script: live updates from /events (server-sent events).
//
// When the store changes (a commit by anyone, a saved feedback file) the page reloads, so it
// always shows the store as it is. If the reviewer has typed into a form on this page, the
// page is NOT reloaded (their text would be lost): #live-banner appears instead, offering a
// reload, and the typed text stays. Loaded with <script src> only: the desk's CSP forbids
// inline script. A page that answers a refused decision (#live-hold: the typed text is on
// it, and reloading it would post the form again) also shows the banner instead; its
// reload link opens the phase page.
(function () {
  "use strict";
  if (!window.EventSource) {
    return;
  }
  var typed = false;
  document.addEventListener("input", function (event) {
    if (event.target && event.target.form) {
      typed = true;
    }
  }, true);
  document.addEventListener("submit", function () {
    typed = true; // the answer is on its way: do not reload under it
  }, true);

  function showBanner() {
    var banner = document.getElementById("live-banner");
    if (banner) {
      banner.hidden = false;
    }
  }

  var hold = document.getElementById("live-hold") !== null;
  var source = new EventSource("/events");
  source.addEventListener("change", function () {
    if (typed || hold) {
      showBanner();
    } else {
      source.close();
      window.location.reload();
    }
  });
  window.addEventListener("pagehide", function () {
    source.close();
  });
})();
