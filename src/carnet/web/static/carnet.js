/* Carnet's one small script (static, so allowed by the CSP's script-src 'self'); the pages work without it.
 * 1. Folded sections (<details data-carnet-unfold>: the space's menu, the filters, the documents' categories) are
 *    folded on a phone and unfold by themselves from 48em up (issue #16-1).
 * 2. The service worker (/sw.js, scope "/") is registered: it keeps only the static shell and the offline page,
 *    never a page or a response carrying health data (issue #16-2, docs/deployment.md). */
(function () {
  "use strict";
  var wide = window.matchMedia("(min-width: 48em)");
  function unfold() {
    if (!wide.matches) return;
    document.querySelectorAll("details[data-carnet-unfold]").forEach(function (section) {
      section.open = true;
    });
  }
  unfold();
  if (wide.addEventListener) wide.addEventListener("change", unfold);

  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () {
      /* no offline page then: Carnet works the same */
    });
  }
})();
