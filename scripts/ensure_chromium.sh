#!/usr/bin/env bash
# The browser tests drive Debian's chromium (never `playwright install`). Install it when it
# is missing and this user may (root with apt-get); otherwise say how, and let the browser
# tests report it.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests..."
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "chromium is missing: run 'sudo apt-get install chromium' for the browser tests." >&2
fi
