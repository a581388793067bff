#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright: its headless shell (package chromium-headless-shell,
# /usr/bin/chromium-headless-shell), which does the same work as /usr/bin/chromium with about a quarter less CPU.
# Install it when it is missing and apt is available; otherwise say so (the tests then use /usr/bin/chromium
# if it is there, or fail with a clear message under CI and skip outside it). CRM_CHROMIUM names another binary.
set -euo pipefail
CHROMIUM=${CRM_CHROMIUM:-/usr/bin/chromium-headless-shell}
if [[ -x "$CHROMIUM" ]]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Chromium's headless shell is not installed at $CHROMIUM and apt-get is not available: install Chromium to run the browser tests." >&2
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "Chromium's headless shell is missing; run: sudo apt-get install -y chromium-headless-shell" >&2
    exit 0
  fi
fi
echo "Installing Debian's chromium-headless-shell for the browser tests…"
export DEBIAN_FRONTEND=noninteractive
install() { $SUDO apt-get install -y -qq --no-install-recommends chromium-headless-shell fonts-liberation >/dev/null; }
install 2>/dev/null || { $SUDO apt-get update -qq && install; }
"$CHROMIUM" --version
