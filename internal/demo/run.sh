#!/bin/sh
# make run: the simulated device and the review workspace, paired, with
# one command, so that a newcomer sees both halves of Attune.
#
#   internal/demo/run.sh BIN DEMO PANEL LISTEN UI
#
# BIN holds attuned and attune; DEMO is the demo directory (the device's
# data in DEMO/data, the practitioner's home in DEMO/home); PANEL, LISTEN
# and UI are the loopback addresses of the simulated front panel, the
# device's link and the workspace. The first run pairs a demo home with
# the device by the code it shows (the case "Demo family", its key kept
# WITHOUT a passphrase: a demo only); later runs find the home paired and
# skip it. Ctrl-C stops both.
set -eu
bin=$1 demo=$2 panel=$3 listen=$4 ui=$5
home=$demo/home
mkdir -p "$demo"
command -v curl >/dev/null || { echo "make run needs curl (apt install curl)"; exit 1; }

dev_pid='' ui_pid=''
stop() {
	trap - EXIT INT TERM
	[ -z "$ui_pid" ] || kill "$ui_pid" 2>/dev/null || true
	[ -z "$dev_pid" ] || kill "$dev_pid" 2>/dev/null || true
	wait 2>/dev/null || true
}
trap stop EXIT
trap 'echo; echo "stopping the device and the workspace"; exit 0' INT TERM

ready=$demo/ready.json
rm -f "$ready"
"$bin/attuned" run --config "$demo/attuned.toml" --board sim --data "$demo/data" --panel "$panel" --listen "$listen" --ready-file "$ready" 2>"$demo/attuned.log" &
dev_pid=$!
n=0
until [ -s "$ready" ]; do
	if ! kill -0 "$dev_pid" 2>/dev/null || [ $n -gt 300 ]; then
		echo "the simulated device did not start; its log ($demo/attuned.log) ends:"; tail -n 15 "$demo/attuned.log"; exit 1
	fi
	n=$((n + 1)); sleep 0.1
done

field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p"; }
state() { curl -fsS "http://$panel/api/panel" | field state; }

if ls "$home"/devices/*.json >/dev/null 2>&1; then
	if [ "$(state)" = not_paired ]; then
		echo "demo/home is paired with a device that no longer knows it (demo/data was reset):"
		echo "remove the demo home (rm -rf $home) and run make run again"; exit 1
	fi
	echo "demo home already paired with the simulated device"
else
	echo "pairing a demo home with the simulated device…"
	curl -fsS -H 'Content-Type: application/json' -d '{"button":"pair","ms":3500}' "http://$panel/api/panel/press" >/dev/null
	code='' n=0
	while [ -z "$code" ]; do
		[ $n -lt 100 ] || { echo "the device did not open its pairing window; see $demo/attuned.log"; exit 1; }
		code=$(curl -fsS "http://$panel/api/panel" | field code)
		n=$((n + 1)); [ -n "$code" ] || sleep 0.1
	done
	"$bin/attune" pair --device "$listen" --code "$code" --case "Demo family" --no-passphrase --home "$home"
	echo "the demo case's key is kept WITHOUT a passphrase (--no-passphrase): fine for a demo, never for a family's films"
fi

urls=$demo/ui.txt
rm -f "$urls"
"$bin/attune" ui --home "$home" --addr "$ui" --no-open >"$urls" 2>"$demo/ui.log" &
ui_pid=$!
n=0
until grep -q '^http' "$urls" 2>/dev/null; do
	if ! kill -0 "$ui_pid" 2>/dev/null || [ $n -gt 100 ]; then
		echo "the workspace did not start:"; cat "$demo/ui.log"; exit 1
	fi
	n=$((n + 1)); sleep 0.1
done
echo
echo "the device (simulated front panel): http://$panel/   click REC to film, REC again to stop"
echo "the workspace (the practitioner's):  $(grep '^http' "$urls")"
echo "   Sync now brings the recordings over; Open plays them. Ctrl-C stops both."
echo "   a recording still on the device decrypts with: make play ID=<recording id>"
wait "$ui_pid"
