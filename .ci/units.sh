#!/usr/bin/env bash
# The deploy/ files as systemd and sudo read them, without a running systemd: every service's
# exposure (systemd-analyze security) at 2.0 or less, the launchers' syntax, the sudo rule's syntax.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v visudo >/dev/null || need+=(sudo)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
status=0
for unit in deploy/systemd/*.service; do
  # --threshold=20: fail above an exposure of 2.0 (the scale is tenths).
  if exposure=$(systemd-analyze security --offline=true --threshold=20 "$unit" 2>&1); then verdict=ok; else verdict=TOO-HIGH status=1; fi
  printf '%-45s %s  %s\n' "$(basename "$unit")" "$(grep -o 'Overall exposure level.*' <<<"$exposure" | sed 's/.*: //')" "$verdict"
done
for script in deploy/bin/*; do sh -n "$script"; done
bash -n scripts/install.sh scripts/bootstrap.sh scripts/wheelhouse.sh
visudo -cq -f deploy/sudoers
echo "launchers and sudo rule: syntax ok"
exit $status
