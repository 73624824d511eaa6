/* Carnet's service worker (issue #16-2), served at /sw.js with the scope "/" by carnet/web/pwa.py.
 *
 * It keeps the static shell only — the files under /static/ listed in SHELL and the offline page /hors-ligne — and
 * nothing else, ever: no page of /espace, /pro or /operateur, no document, no /fhir, /api or /oauth response. Every
 * other request goes to the network untouched (network only); when a page cannot be reached, the offline page is
 * shown instead. The cache's name carries a version computed from the shell's files: a new deployment whose shell
 * changed installs a new cache and deletes the old one (docs/deployment.md, « Application installable »). */
"use strict";

const CACHE = "carnet-shell-__CARNET_VERSION__";
const OFFLINE = "/hors-ligne";
const SHELL = __CARNET_SHELL__;

/* The one rule of what may be kept: a static file, or the offline page. Health data lives nowhere else than in
 * pages and responses of other paths, which are never put in the cache. */
function mayKeep(url) {
  const address = new URL(url, self.location.origin);
  return address.origin === self.location.origin && (address.pathname === OFFLINE || address.pathname.startsWith("/static/"));
}

self.addEventListener("install", (event) => {
  const kept = SHELL.filter(mayKeep);
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll(kept.map((path) => new Request(path, { credentials: "omit", cache: "reload" }))))
      .then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return; // network only
  if (request.mode === "navigate") {
    // network only; the offline page when the network cannot be reached
    event.respondWith(fetch(request).catch(() => caches.match(OFFLINE)));
    return;
  }
  if (mayKeep(request.url)) {
    // the static shell: the network first (always the deployed version), the kept copy when offline
    event.respondWith(fetch(request).catch(() => caches.match(request, { ignoreSearch: true })));
  }
  // anything else: not handled here, the browser asks the network as without a worker
});
