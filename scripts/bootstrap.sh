# Shared by scripts/run and scripts/test: system packages, then the project's virtualenv.
# Usage: source scripts/bootstrap.sh; bootstrap [extra apt packages…]; then .venv/bin/… is ready.
set -euo pipefail

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "==> Paquets système : $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

bootstrap() {
  local extras="$1" missing=()
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "Carnet demande Python 3.11 ou plus récent (trouvé : $(python3 --version))." >&2; exit 1; }
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  shift
  for pkg in "$@"; do
    case "$pkg" in
      chromium) command -v chromium >/dev/null || missing+=(chromium fonts-dejavu-core) ;;
      npm) command -v npm >/dev/null || missing+=(npm) ;;
      *) dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
    esac
  done
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
  if [ ! -x .venv/bin/python ]; then
    echo "==> Environnement Python (.venv)"
    python3 -m venv .venv
  fi
  echo "==> Dépendances Python (pyproject.toml${extras:+ [$extras]})"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras:+[$extras]}"
}
