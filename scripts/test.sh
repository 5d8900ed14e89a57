#!/usr/bin/env bash
# The whole test suite: lint (including the layering rule), type check, then every test
# project. Extra arguments go to `playwright test` (e.g. `npm test -- --project=unit`).
set -euo pipefail
cd "$(dirname "$0")/.."

npm run --silent lint
npm run --silent typecheck
npx playwright test -c tests "$@"
