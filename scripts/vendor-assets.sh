#!/usr/bin/env bash
# Vendor the portal's front-end assets from node_modules into
# src/carnet/web/static/vendor/ so the server can serve them with no
# build step at run time.
#
#   bash scripts/vendor-assets.sh                        # htmx + uPlot (default)
#   DSFR_ACCEPT_LICENSE=1 bash scripts/vendor-assets.sh  # htmx + uPlot + DSFR (see below)
#
# htmx, uPlot (the charts of the medical profile, drawn by static/charts.js)
# and the axe-core devDependency are pinned in package.json /
# package-lock.json. To upgrade: edit package.json, run
# `npm install --package-lock-only`, re-run this script and commit
# package*.json together with static/vendor/.
#
# Carnet's own stylesheet is src/carnet/web/static/carnet.css (hand-written,
# not vendored). It styles the DSFR class names (fr-*) that the templates use,
# so the pages look right WITHOUT the French State design system.
#
# DSFR (@gouvfr/dsfr) is NOT a dependency of this project. Its terms of use
# (doc/legal/cgu.md in the npm package) reserve it to French State services
# on .gouv.fr domains, and its preinstall hook refuses to install until those
# terms are accepted. An operator who is entitled to use it and accepts the
# terms -- their decision and their responsibility -- sets
# DSFR_ACCEPT_LICENSE=1: the script then installs @gouvfr/dsfr@$DSFR_PIN with
# `npm install --no-save` (package.json / package-lock.json are untouched)
# and copies it into vendor/dsfr/, where it takes over the same fr-* classes.
# Without the variable, DSFR is not installed and vendor/dsfr/ is left as it
# is (absent in the repository).
#
# The script is idempotent: it rebuilds vendor/htmx/, vendor/uplot/ (and vendor/dsfr/ when
# DSFR is accepted) from scratch in a staging directory, then swaps them in,
# and leaves vendor/README.md alone. For DSFR it first checks that every
# relative url(...) in the copied CSS resolves to a copied file (exit 1
# otherwise, vendor/ left unchanged).
#
# axe-core (devDependency) is NOT vendored: the test-suite loads it from
# node_modules/axe-core/axe.min.js after `npm ci`.

set -euo pipefail

DSFR_PIN="1.15.3"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

NM="$ROOT/node_modules"
STATIC="$ROOT/src/carnet/web/static"
VENDOR="$STATIC/vendor"
DSFR_SRC="$NM/@gouvfr/dsfr"
HTMX_SRC="$NM/htmx.org"
UPLOT_SRC="$NM/uplot"

die() { echo "vendor-assets: error: $*" >&2; exit 1; }
log() { echo "vendor-assets: $*"; }

command -v node >/dev/null || die "node is required"
command -v npm >/dev/null || die "npm is required"

want_dsfr=0
[[ "${DSFR_ACCEPT_LICENSE:-}" == "1" ]] && want_dsfr=1

# Version of an installed package ("" if absent).
installed_version() {
  local pkg_json="$NM/$1/package.json"
  [[ -f "$pkg_json" ]] || { echo ""; return 0; }
  node -p "require(process.argv[1]).version" "$pkg_json"
}

# Version pinned in package.json (dependencies or devDependencies).
pinned_version() {
  node -p '
    const p = require(process.argv[1]);
    const n = process.argv[2];
    ((p.dependencies || {})[n] || (p.devDependencies || {})[n] || "")
  ' "$ROOT/package.json" "$1"
}

# ---------------------------------------------------------------- install
need_ci=0
if [[ ! -d "$NM" ]]; then
  need_ci=1
else
  for pkg in htmx.org uplot axe-core; do
    if [[ "$(installed_version "$pkg")" != "$(pinned_version "$pkg")" ]]; then
      log "$pkg: installed '$(installed_version "$pkg")' != pinned '$(pinned_version "$pkg")'"
      need_ci=1
    fi
  done
fi

if (( need_ci )); then
  log "running npm ci"
  npm ci --no-audit --no-fund \
    || die "npm ci failed (if package.json was edited, run 'npm install --package-lock-only' first)"
fi

HTMX_VERSION="$(installed_version htmx.org)"
[[ -n "$HTMX_VERSION" ]] || die "htmx.org missing from node_modules after npm ci"
[[ -f "$HTMX_SRC/dist/htmx.min.js" ]] || die "$HTMX_SRC/dist/htmx.min.js not found"
UPLOT_VERSION="$(installed_version uplot)"
[[ -n "$UPLOT_VERSION" ]] || die "uplot missing from node_modules after npm ci"

if (( want_dsfr )); then
  if [[ "$(installed_version @gouvfr/dsfr)" != "$DSFR_PIN" ]]; then
    log "DSFR_ACCEPT_LICENSE=1: installing @gouvfr/dsfr@$DSFR_PIN (--no-save; terms accepted by the operator)"
    DSFR_ACCEPT_LICENSE=1 npm install --no-save --no-audit --no-fund "@gouvfr/dsfr@$DSFR_PIN" \
      || die "npm install @gouvfr/dsfr@$DSFR_PIN failed"
  fi
  DSFR_VERSION="$(installed_version @gouvfr/dsfr)"
  [[ "$DSFR_VERSION" == "$DSFR_PIN" ]] || die "@gouvfr/dsfr $DSFR_PIN not found in node_modules"
  [[ -d "$DSFR_SRC/dist" ]] || die "$DSFR_SRC/dist not found"
fi

# ---------------------------------------------------------------- staging
mkdir -p "$VENDOR"
STAGE="$(mktemp -d "$STATIC/.vendor-staging.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

copy() {  # copy SRC DEST_FILE (creates parent dirs, normalises mode)
  [[ -f "$1" ]] || die "missing source file: $1"
  install -D -m 0644 "$1" "$2"
}

# ---- htmx
copy "$HTMX_SRC/dist/htmx.min.js" "$STAGE/htmx/htmx.min.js"
copy "$HTMX_SRC/LICENSE"          "$STAGE/htmx/LICENSE"

# ---- uPlot (classic script build: defines the global uPlot; plus its stylesheet)
copy "$UPLOT_SRC/dist/uPlot.iife.min.js" "$STAGE/uplot/uPlot.iife.min.js"
copy "$UPLOT_SRC/dist/uPlot.min.css"     "$STAGE/uplot/uPlot.min.css"
copy "$UPLOT_SRC/LICENSE"                "$STAGE/uplot/LICENSE"

# ---- DSFR (only with DSFR_ACCEPT_LICENSE=1)
if (( want_dsfr )); then
  D="$DSFR_SRC/dist"
  S="$STAGE/dsfr"
  copy "$D/dsfr.min.css"                "$S/dsfr.min.css"
  copy "$D/dsfr.module.min.js"          "$S/dsfr.module.min.js"
  copy "$D/dsfr.nomodule.min.js"        "$S/dsfr.nomodule.min.js"
  copy "$D/utility/icons/icons.min.css" "$S/utility/icons/icons.min.css"
  copy "$DSFR_SRC/LICENSE.md"           "$S/LICENSE.md"

  # Icons: icons.min.css (in utility/icons/) points at ../../icons/<cat>/*.svg
  # and dsfr.min.css at icons/<cat>/*.svg, so dist/icons/ is copied as dsfr/icons/.
  # Only the .svg files are taken (every one of them is referenced by icons.min.css).
  ( cd "$D" && find icons -type f -name '*.svg' -print0 ) |
    while IFS= read -r -d '' f; do copy "$D/$f" "$S/$f"; done

  # Fonts: the @font-face rules in dsfr.min.css list woff2 AND woff for each face
  # (woff2 first), so both formats are kept.
  ( cd "$D" && find fonts -maxdepth 1 -type f \( -name '*.woff2' -o -name '*.woff' \) -print0 ) |
    while IFS= read -r -d '' f; do copy "$D/$f" "$S/$f"; done

  # Favicons: the whole folder (manifest.webmanifest references the two
  # android-chrome PNGs, so they are kept alongside favicon.svg/.ico and
  # apple-touch-icon.png).
  ( cd "$D" && find favicon -maxdepth 1 -type f -print0 ) |
    while IFS= read -r -d '' f; do copy "$D/$f" "$S/$f"; done
  for f in favicon.svg favicon.ico apple-touch-icon.png manifest.webmanifest; do
    [[ -f "$S/favicon/$f" ]] || die "favicon/$f missing from $D/favicon"
  done

  # ---- url check
  # Every url(...) in the copied CSS that is a relative path must resolve to a
  # copied file. data:, absolute (http:, https:, //, /) and fragment-only
  # (#id, %23id) references are skipped.
  check_css_urls() {
    local css="$1" base raw ref path missing=0 checked=0
    base="$(dirname "$css")"
    while IFS= read -r raw; do
      ref="${raw#url(}"; ref="${ref%)}"
      ref="${ref#\"}"; ref="${ref%\"}"; ref="${ref#\'}"; ref="${ref%\'}"
      case "$ref" in
        ''|data:*|http:*|https:*|//*|/*|'#'*|%23*|about:*) continue ;;
      esac
      path="${ref%%[?#]*}"
      checked=$((checked + 1))
      if [[ ! -f "$base/$path" ]]; then
        echo "MISSING: ${css#"$STAGE"/} -> $ref" >&2
        missing=$((missing + 1))
      fi
    done < <(grep -oE 'url\([^)]*\)' "$css" | sort -u)
    log "url check: ${css#"$STAGE"/}: $checked relative url(s), $missing missing"
    return $(( missing > 0 ))
  }

  fail=0
  check_css_urls "$STAGE/dsfr/dsfr.min.css" || fail=1
  check_css_urls "$STAGE/dsfr/utility/icons/icons.min.css" || fail=1
  (( fail == 0 )) || die "unresolved url(...) references in vendored CSS (vendor/ left unchanged)"
fi

# ---------------------------------------------------------------- swap in
dirs=(htmx uplot)
for d in "${dirs[@]}"; do
  rm -rf "${VENDOR:?}/$d"
  mv "$STAGE/$d" "$VENDOR/$d"
done
if (( want_dsfr )); then
  rm -rf "$VENDOR/dsfr"
  mv "$STAGE/dsfr" "$VENDOR/dsfr"
  dirs+=(dsfr)
fi

# ---------------------------------------------------------------- summary
if (( want_dsfr )); then
  log "vendored htmx.org $HTMX_VERSION, uplot $UPLOT_VERSION and @gouvfr/dsfr $DSFR_VERSION (DSFR_ACCEPT_LICENSE=1) into ${VENDOR#"$ROOT"/}"
else
  log "vendored htmx.org $HTMX_VERSION and uplot $UPLOT_VERSION into ${VENDOR#"$ROOT"/}"
  if [[ -d "$VENDOR/dsfr" ]]; then
    log "DSFR not (re)installed: its terms reserve it to French State services on .gouv.fr (set DSFR_ACCEPT_LICENSE=1 only if you accept them); existing vendor/dsfr/ left untouched"
  else
    log "DSFR not installed: its terms reserve it to French State services on .gouv.fr (set DSFR_ACCEPT_LICENSE=1 only if you accept them); pages use static/carnet.css"
  fi
fi
for d in "${dirs[@]}"; do
  printf '  %-5s %6s on disk, %6s apparent, %5d files\n' "$d" \
    "$(du -sh "$VENDOR/$d" | cut -f1)" \
    "$(du -sh --apparent-size "$VENDOR/$d" | cut -f1)" \
    "$(find "$VENDOR/$d" -type f | wc -l)"
done
