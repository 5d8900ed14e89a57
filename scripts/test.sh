#!/usr/bin/env bash
# The whole test suite: lint (including the layering rule), type check, then every test
# project. Extra arguments go to `playwright test` (e.g. `npm test -- --project=unit`).
set -euo pipefail
cd "$(dirname "$0")/.."

npm run --silent lint
npm run --silent typecheck
# The container tests need a Docker engine and the lab images; both scripts are idempotent
# and fast when everything is in place (see fixtures/README.md).
bash fixtures/scripts/ensure-docker.sh
bash fixtures/scripts/build-images.sh >/dev/null
# The lease tests start throwaway PostgreSQL servers from Debian's binaries (idempotent, fast when installed).
bash fixtures/scripts/ensure-postgres.sh
# The qemu project's boards: QEMU, U-Boot, a Debian kernel and a BusyBox initramfs (idempotent).
bash fixtures/scripts/ensure-qemu.sh >/dev/null
npx playwright test -c tests "$@"
