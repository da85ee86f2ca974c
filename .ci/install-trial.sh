#!/usr/bin/env bash
# The production install tried as a practice's IT person would, on a fresh Debian (run by .ci/run
# through shared/tools/fresh-debian, as root, after `make install`): enrol the appliance, serve a
# snapshot on a local HTTP server, run the pull unit's exact command line under its restrictions
# (scripts/run-unit.py), read the status as the monitoring agent, run doctor, open the interface as
# a staff member. Every command is printed before it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n$ %s\n' "$*"; "$@"; }
expect() { local want=$1; shift; printf '\n$ %s   (expect exit %s)\n' "$*" "$want"; set +e; "$@"; local got=$?; set -e
           [ "$got" = "$want" ] || { echo "FAILED: exit $got, expected $want" >&2; exit 1; }; }

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends tmux poppler-utils >/dev/null

# --- the publisher's side (normally the platform), with the same program ------------------------
platform=/srv/platform
mkdir -p "$platform/www"
step /opt/continuity/venv/bin/continuity publisher synth --patients 200 --seed 3 --out "$platform/fhir"
step /opt/continuity/venv/bin/continuity publisher keygen --out "$platform/keys"

# --- enrolment on the appliance (docs/operations.md, "Enrol the appliance") ----------------------
printf 'phrase de passe du docteur\n' > /tmp/dr.martin.pass
printf 'lilas orange fenetre trente\n' > /tmp/accueil.pass
chown continuity /tmp/dr.martin.pass /tmp/accueil.pass
step continuity init --user dr.martin --role prescriber --rpps 10101010105 --passphrase-file /tmp/dr.martin.pass
step continuity staff add accueil --user dr.martin --passphrase-file /tmp/dr.martin.pass \
  --new-passphrase-file /tmp/accueil.pass
step continuity trust "$platform/keys/publisher.pub"
step /opt/continuity/venv/bin/continuity publisher publish "$platform/fhir" --key "$platform/keys" \
  --recipient /var/lib/continuity/appliance.pub --practice cabinet-essai --seq 1 --out "$platform/www/latest.snap"

# --- the pull source and its credentials: configuration only, no unit edited ---------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$platform/www" >/tmp/http.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || cat /tmp/http.log' EXIT
python3 - "$port" <<'PY'
import sys, time, urllib.request
for _ in range(50):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/latest.snap", timeout=2).read(1)
        break
    except OSError:
        time.sleep(0.2)
else:
    raise SystemExit("the local HTTP server did not start")
PY
step sed -i "s|^CONTINUITY_SOURCE=.*|CONTINUITY_SOURCE=http://127.0.0.1:$port/latest.snap|" /etc/continuity/continuity.env
printf 'machine 127.0.0.1 login cabinet-essai password secret-du-cabinet\n' > /etc/continuity/netrc
step ls -l /etc/continuity

# --- the nightly pull: the unit's exact command line, user, environment and sandbox ----------------
step scripts/run-unit.py continuity-pull.service --journal /tmp/pull.journal
grep -q "^<6>continuity.pull: pull from http://127.0.0.1:$port/latest.snap: accepted" /tmp/pull.journal
step scripts/run-unit.py continuity-pull.service --journal /tmp/pull.journal   # again: 304, unchanged
step scripts/run-unit.py continuity-status.service --journal /tmp/status.journal
step scripts/run-unit.py continuity-retention.service --journal /tmp/retention.journal
# --- a USB stick's file through the inbox and the watch unit --------------------------------------
step /opt/continuity/venv/bin/continuity publisher publish "$platform/fhir" --key "$platform/keys" \
  --recipient /var/lib/continuity/appliance.pub --practice cabinet-essai --seq 2 --out /tmp/usb-latest.snap
( sleep 8; install -o continuity -g continuity -m 0600 /tmp/usb-latest.snap /var/lib/continuity/inbox/usb-latest.snap ) &
step timeout --preserve-status 25 scripts/run-unit.py continuity-watch.service --journal /tmp/watch.journal
grep -q '^<6>continuity.watch: inbox usb-latest.snap: accepted' /tmp/watch.journal
if grep -rq secret-du-cabinet /var/lib/continuity; then echo "FAILED: the password reached the home" >&2; exit 1; fi
step stat -c '%U:%G %a %n' /var/lib/continuity /var/lib/continuity/state.json

# --- monitoring: the agent's user in group continuity-monitor -----------------------------------
step useradd --create-home nagios
expect 3 runuser -u nagios -- continuity-status
step usermod -aG continuity-monitor nagios
expect 0 runuser -u nagios -- continuity-status
expect 0 runuser -u nagios -- continuity-status --json

# --- a printer (CUPS with a PDF queue standing for the practice's printer) -------------------------
apt-get install -y -qq --no-install-recommends printer-driver-cups-pdf >/dev/null
cupsd
sleep 2
step lpadmin -p Accueil -E -v cups-pdf:/ -m lsb/usr/cups-pdf/CUPS-PDF_noopt.ppd
step lpadmin -d Accueil   # the default for every account, the service user included

# --- the self-check ----------------------------------------------------------------------------
expect 0 continuity doctor

# --- the interface, as a staff member (group continuity-staff) ----------------------------------
step useradd --create-home --shell /bin/bash marie
step usermod -aG continuity-staff marie
expect 77 runuser -u marie -- continuity doctor   # only the interface, not the admin commands
screen() { sleep "${1:-2}"; runuser -u marie -- tmux capture-pane -p -t desk; }
step runuser -u marie -- tmux new-session -d -s desk -x 100 -y 30 continuity-desk
screen 6
keys() { runuser -u marie -- tmux send-keys -t desk "$@"; }
keys Enter; sleep 1; keys Down; sleep 1; keys Enter    # the list of names: the first one, accueil
screen 2
keys 'lilas orange fenetre trente' Enter
unlocked=$(screen 10)
grep -q "utilisateur : accueil" <<<"$unlocked" || { echo "$unlocked"; echo "FAILED: not unlocked" >&2; exit 1; }
keys martin
found=$(screen 4)
head -14 <<<"$found"
grep -q "MARTIN" <<<"$found" || { echo "FAILED: no search result" >&2; exit 1; }
keys C-l                                              # lock before leaving
sleep 2
runuser -u marie -- tmux kill-session -t desk || true
step continuity journal access --user accueil
