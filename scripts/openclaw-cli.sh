#!/usr/bin/env bash
# Installs the published OpenClaw CLI (pinned) into a cache directory, once, and prints the path
# of its `openclaw` binary. test/openclaw-cli.int.test.ts drives Warden's gateway with it: the
# real client, not one written by us. Needs node ≥ 22 on PATH (source scripts/use-node.sh).
set -euo pipefail
version="${OPENCLAW_CLI_VERSION:-2026.9.6}"
dir="${WARDEN_OPENCLAW_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden-openclaw-$version}"
bin="$dir/node_modules/.bin/openclaw"
if [ ! -x "$bin" ]; then
  echo "openclaw-cli: installing openclaw@$version from the npm registry into $dir (once)…" >&2
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" "openclaw@$version" >&2
fi
echo "$bin"
