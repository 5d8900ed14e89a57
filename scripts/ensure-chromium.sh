#!/usr/bin/env bash
# Debian's chromium for looking at HTML reports through playwright-core (Playwright's own
# browser download is not reachable here). Idempotent: does nothing when it is installed.
# Prints the executable's path.
set -euo pipefail
bin="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
if [ -f /etc/debian_version ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[ensure-chromium] installing Debian's chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get -o DPkg::Lock::Timeout=120 update -qq >&2
  timeout 900 apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends chromium >&2
  [ -x "$bin" ] && { echo "$bin"; exit 0; }
fi
echo "[ensure-chromium] no chromium at $bin: install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH" >&2
exit 1
