#!/usr/bin/env bash
# Generates the Python gRPC code for jeeves.engine.v1 (engine_pb2.py, engine_pb2_grpc.py) from
# the repository's proto/jeeves/engine/v1/engine.proto, with the system Python's grpc_tools.
#
#   generate.sh [OUT_DIR]     default: examples/clients/python-grpc/gen (git-ignored)
#
# Then put OUT_DIR on PYTHONPATH: `from jeeves.engine.v1 import engine_pb2, engine_pb2_grpc`.
set -euo pipefail

PYTHON=/usr/bin/python3 # Debian's python3-grpcio and python3-grpc-tools (scripts/debian-deps.sh)
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="${1:-$here/gen}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$root"

if ! "$PYTHON" -c 'import grpc_tools' >/dev/null 2>&1; then
  echo "generate.sh: $PYTHON has no grpc_tools; run scripts/debian-deps.sh" >&2
  exit 1
fi

if err="$("$PYTHON" -m grpc_tools.protoc -I proto --python_out="$out" --grpc_python_out="$out" \
  proto/jeeves/engine/v1/engine.proto 2>&1)"; then
  echo "generate.sh: wrote $out/jeeves/engine/v1/engine_pb2{,_grpc}.py"
  exit 0
fi
if ! grep -q "Explicit 'optional' labels are disallowed" <<<"$err"; then
  echo "$err" >&2
  exit 1
fi

# The protoc inside Debian 12's python3-grpc-tools (1.14, protoc 3.5) predates proto3 `optional`.
# Only messages no RPC carries use it (GenerationParams, AgentConfig, AgentLLMConfig: configs
# travel as JSON bytes), so generating from a copy without those labels yields the same wire
# format for every RPC; those fields merely lose has-presence in Python.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/jeeves/engine/v1"
sed -E 's/^([[:space:]]*)optional[[:space:]]+/\1/' proto/jeeves/engine/v1/engine.proto \
  >"$tmp/jeeves/engine/v1/engine.proto"
"$PYTHON" -m grpc_tools.protoc -I "$tmp" --python_out="$out" --grpc_python_out="$out" \
  "$tmp/jeeves/engine/v1/engine.proto"
echo "generate.sh: wrote $out/jeeves/engine/v1/engine_pb2{,_grpc}.py (this protoc predates proto3 optional: generated without those labels)"
