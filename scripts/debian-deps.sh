#!/usr/bin/env bash
# Makes sure the system Python (/usr/bin/python3, not a pyenv or venv python3 on PATH) can import
# grpc and grpc_tools, which the Python gRPC client example and its tests
# (examples/clients/python-grpc, test/python-grpc.int.test.ts) need. Idempotent: when both import
# already, it changes nothing. Otherwise it installs Debian's python3-grpcio and
# python3-grpc-tools with apt-get (through sudo when not root).
set -euo pipefail

PYTHON=/usr/bin/python3
PACKAGES=(python3-grpcio python3-grpc-tools)

have_grpc() {
  [ -x "$PYTHON" ] && "$PYTHON" -c 'import grpc, grpc_tools' >/dev/null 2>&1
}

if have_grpc; then
  echo "debian-deps: $PYTHON has grpc and grpc_tools already"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "debian-deps: $PYTHON cannot import grpc and grpc_tools, and this is not a Debian-like system (no apt-get); install ${PACKAGES[*]} (or their equivalents for $PYTHON) yourself" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "debian-deps: $PYTHON cannot import grpc and grpc_tools; installing ${PACKAGES[*]} needs root, and sudo is not available. Run as root: apt-get update && apt-get install -y --no-install-recommends ${PACKAGES[*]}" >&2
  exit 1
fi

echo "debian-deps: installing ${PACKAGES[*]} for $PYTHON (apt-get)…"
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"

if ! have_grpc; then
  echo "debian-deps: installed ${PACKAGES[*]}, but $PYTHON still cannot import grpc and grpc_tools" >&2
  exit 1
fi
echo "debian-deps: $PYTHON has grpc and grpc_tools now"
