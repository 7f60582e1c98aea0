#!/usr/bin/env bash
# Installs Warden from this checkout (bootstrapping Node 24 when the machine's Node is older),
# then runs the main demo on embedded SQLite: a writer/reviewer loop with a human sign-off.
# Any arguments are passed to `warden run` (e.g. --no-interactive). Every command the demo
# prints as a next step works when pasted into a shell in this directory (./warden, with the
# demo's home).
set -euo pipefail
cd "$(dirname "$0")/.."
export WARDEN_HOME="${WARDEN_HOME:-$PWD/.warden-demo}"
echo "demo: Warden home $WARDEN_HOME (./warden is this checkout's CLI)" >&2
WARDEN_COMMAND=./warden ./warden init >/dev/null
WARDEN_COMMAND=./warden exec ./warden run examples/review-loop.yaml --input '{"topic": "durable AI agents"}' "$@"
