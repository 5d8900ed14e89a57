#!/usr/bin/env bash
# The main job: the example lab suite with an HTML report in playwright-report/.
# Extra arguments go to `playwright test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# The example devices run in containers: a Docker engine and the lab images are needed.
bash fixtures/scripts/ensure-docker.sh
bash fixtures/scripts/build-images.sh >/dev/null
# The QEMU board (U-Boot, a Debian kernel, BusyBox) of the qemu-board projects.
bash fixtures/scripts/ensure-qemu.sh >/dev/null
npx playwright test "$@"
echo "HTML report: $(pwd)/playwright-report/index.html (open with: npx playwright show-report)"
