#!/usr/bin/env bash
# Installs everything from a clean clone and runs the full test suite:
# format check, type-aware lint, typecheck, build, unit + integration + chaos tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/use-node.sh
source scripts/use-node.sh
echo "node $(node --version), npm $(npm --version)"
echo "installing from the lockfile (npm ci)…"
npm ci --no-audit --no-fund
bash scripts/debian-deps.sh
# The published OpenClaw CLI, for the black-box gateway test (cached after the first run).
bash scripts/openclaw-cli.sh >/dev/null
npm test
# Installing, building and testing must not change the checkout (a rewritten lockfile, a
# generated file someone forgot to ignore): fail and say what changed.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  changed="$(git status --porcelain)"
  if [ -n "$changed" ]; then
    echo "test.sh: install + build + tests changed the checkout:" >&2
    echo "$changed" >&2
    exit 1
  fi
fi
