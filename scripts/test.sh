#!/usr/bin/env bash
# Installs everything from a clean clone and runs the full test suite:
# format check, type-aware lint, typecheck, build, unit + integration + chaos tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/use-node.sh
source scripts/use-node.sh
echo "node $(node --version), npm $(npm --version)"
# `npm ci` rejects lockfiles written by this npm (it omits other platforms' optional
# bindings), so install from the lockfile with `npm install`, which keeps the locked versions.
npm install --no-audit --no-fund
npm test
