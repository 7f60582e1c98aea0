#!/usr/bin/env bash
# Installs Warden from this checkout (bootstrapping Node 24 when the machine's Node is older),
# then runs the main demo on embedded SQLite: a writer/reviewer loop with a human sign-off.
# Any arguments are passed to `warden run` (e.g. --no-interactive).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/use-node.sh
source scripts/use-node.sh
[ -d node_modules ] || npm install --no-audit --no-fund --silent
npm run --silent build
export WARDEN_HOME="${WARDEN_HOME:-$PWD/.warden-demo}"
node dist/cli/main.js init >/dev/null
exec node dist/cli/main.js run examples/review-loop.yaml --input '{"topic": "durable AI agents"}' "$@"
