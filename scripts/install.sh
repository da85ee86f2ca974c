#!/usr/bin/env bash
# Install Continuity on a practice PC for production (`make install`), apart from any demo:
#
#   /opt/continuity/venv        the program, at the versions of deploy/appliance-requirements.txt (hashes checked)
#   /var/lib/continuity         the appliance home (StateDirectory of the units), user continuity, mode 0700
#   /etc/continuity/            continuity.env (pull source, thresholds, alert mail), netrc (HTTP credentials)
#   /etc/systemd/system/        the units: nightly pull, inbox watch, morning status, monthly retention, alert
#   /etc/sudoers.d/continuity   staff open the interface (continuity-desk), the monitoring agent reads the status
#   /usr/local/bin/             continuity (admin commands as the service user), continuity-desk, continuity-status
#
# Usage: sudo scripts/install.sh [--source URL] [--wheelhouse DIR]
#   --source URL       the snapshot URL given by the publisher (else set CONTINUITY_SOURCE later)
#   --wheelhouse DIR   no internet on this PC: install from DIR (scripts/wheelhouse.sh made it)
# Safe to run again (an upgrade): the program is replaced, configuration and data are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then exec sudo "$0" "$@"; fi

source_url= wheelhouse=
while [ $# -gt 0 ]; do
  case "$1" in
    --source) source_url=${2:?--source needs a URL}; shift ;;
    --wheelhouse) wheelhouse=$(cd "${2:?--wheelhouse needs a directory}" && pwd); shift ;;
    *) echo "usage: scripts/install.sh [--source URL] [--wheelhouse DIR]" >&2; exit 2 ;;
  esac
  shift
done
case "$source_url" in
  *://*@*) echo "ERROR: no credentials in the URL; put them into /etc/continuity/netrc (docs/operations.md)" >&2; exit 2 ;;
esac

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
check_python python3
packages=("${RUNTIME_PACKAGES[@]}" sudo)
if [ -n "$wheelhouse" ]; then ensure_packages --offline "${packages[@]}"; else ensure_packages "${packages[@]}"; fi

user=continuity home=/var/lib/continuity prefix=/opt/continuity etc=/etc/continuity

echo "== service user and groups"
getent group "$user" >/dev/null || groupadd --system "$user"
getent passwd "$user" >/dev/null || useradd --system --gid "$user" --home-dir "$home" --no-create-home \
  --shell /usr/sbin/nologin --comment "Continuity appliance" "$user"
for group in continuity-staff continuity-monitor; do getent group "$group" >/dev/null || groupadd --system "$group"; done
install -d -o "$user" -g "$user" -m 0700 "$home"

echo "== program in $prefix/venv"
# A new versioned venv each time, then the `venv` link switched to it in one rename: a timer firing
# during an upgrade runs either the old program or the new one, never half of each.
new=$prefix/venv-$(date +%Y%m%d-%H%M%S)
install -d -m 0755 "$prefix" "$prefix/libexec" "$prefix/doc"
python3 -m venv "$new"
pip=("$new/bin/python" -m pip install -q --no-warn-script-location)
if [ -n "$wheelhouse" ]; then
  "${pip[@]}" --no-index --find-links "$wheelhouse" --require-hashes -r "$wheelhouse/requirements.txt"
  wheel=$(ls "$wheelhouse"/continuity_appliance-*.whl)
else
  "${pip[@]}" --require-hashes -r deploy/appliance-requirements.txt
  build=$(mktemp -d)
  "$new/bin/python" -m pip wheel -q --no-deps --wheel-dir "$build" .
  wheel=$(ls "$build"/continuity_appliance-*.whl)
fi
"${pip[@]}" --no-index --no-deps "$wheel"
[ -z "${build:-}" ] || rm -rf "$build"
[ ! -d "$prefix/venv" ] || [ -L "$prefix/venv" ] || rm -rf "$prefix/venv"
ln -sfn "$(basename "$new")" "$prefix/venv.link"
mv -T "$prefix/venv.link" "$prefix/venv"
for old in "$prefix"/venv-*; do [ "$old" = "$new" ] || rm -rf "$old"; done
"$prefix/venv/bin/continuity" --version

echo "== launchers, alert script, documentation"
install -m 0755 deploy/bin/continuity deploy/bin/continuity-desk deploy/bin/continuity-status /usr/local/bin/
install -m 0755 deploy/bin/continuity-alert "$prefix/libexec/"
install -m 0644 docs/operations.md "$prefix/doc/"

echo "== configuration in $etc"
install -d -o root -g "$user" -m 0750 "$etc"
[ -e "$etc/continuity.env" ] || install -o root -g "$user" -m 0640 deploy/continuity.env "$etc/continuity.env"
[ -e "$etc/netrc" ] || install -o root -g root -m 0600 /dev/null "$etc/netrc"
if [ -n "$source_url" ]; then
  sed -i "s|^CONTINUITY_SOURCE=.*|CONTINUITY_SOURCE=$source_url|" "$etc/continuity.env"
fi
rules=$(mktemp)
cp deploy/sudoers "$rules"
visudo -cq -f "$rules"
install -o root -g root -m 0440 "$rules" /etc/sudoers.d/continuity
rm -f "$rules"

echo "== systemd units"
units=(continuity-pull.service continuity-pull.timer continuity-watch.service continuity-status.service
       continuity-status.timer continuity-retention.service continuity-retention.timer continuity-alert@.service)
for unit in "${units[@]}"; do install -m 0644 "deploy/systemd/$unit" /etc/systemd/system/; done
enable=(continuity-pull.timer continuity-status.timer continuity-retention.timer continuity-watch.service)
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now "${enable[@]}"
elif command -v systemctl >/dev/null; then
  systemctl enable "${enable[@]}" 2>&1 | grep -v "^Created symlink" || true
  echo "systemd is not running here: the units are enabled and start at the next boot."
else
  echo "No systemd: schedule the same commands with cron instead (deploy/continuity.crontab)."
fi

grep -q '^CONTINUITY_SOURCE=.' "$etc/continuity.env" || echo "
NOTE: set the snapshot URL: CONTINUITY_SOURCE= in $etc/continuity.env"
[ -e "$home/appliance.pub" ] || echo "
Next (docs/operations.md, \"Enrol the appliance\"):
  sudo continuity init --user FIRST.STAFF.NAME
  sudo continuity trust /path/to/publisher.pub
  sudo usermod -aG continuity-staff LOGIN      # each person who opens the interface (continuity-desk)
  sudo usermod -aG continuity-monitor nagios   # the monitoring agent's user (continuity-status)
  sudo continuity doctor"
