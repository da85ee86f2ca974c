# Shared by scripts/bootstrap.sh and scripts/install.sh (sourced, not run).

# The Debian packages Continuity needs at run time: weasyprint's libraries and fonts, venv support,
# CUPS for printing.
RUNTIME_PACKAGES=(python3-venv libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-dejavu-extra cups)

# check_python PYTHON: Python 3.11 or newer, before anything else (an older one fails deep inside pip).
check_python() {
  if ! command -v "$1" >/dev/null; then
    echo "ERROR: $1 not found. Continuity needs Python 3.11 or newer (Debian 12, Ubuntu 24.04)." >&2
    exit 1
  fi
  if ! "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "ERROR: $("$1" -V 2>&1) is too old: Continuity needs Python 3.11 or newer." >&2
    echo "Use Debian 12 / Ubuntu 24.04 or newer, or point PYTHON= at a newer interpreter." >&2
    exit 1
  fi
}

# ensure_packages [--offline] PACKAGE...: apt-get install those not installed yet (as root or with sudo).
ensure_packages() {
  local update=(apt-get update -qq) p missing=() as_root apt_log
  if [ "${1:-}" = --offline ]; then update=(true); shift; fi
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "Installing system packages: ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then as_root=(); elif command -v sudo >/dev/null; then as_root=(sudo); else
    echo "ERROR: need root or sudo to install: ${missing[*]}" >&2
    echo "Ask an administrator to run: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  apt_log=$(mktemp)
  if ! { "${as_root[@]}" "${update[@]}" && \
         DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; \
       } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    echo "ERROR: could not install ${missing[*]} with apt-get (output above)." >&2
    exit 1
  fi
  rm -f "$apt_log"
}
