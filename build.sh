#!/usr/bin/env bash
# Typecheck, lint, then bundle each binary into one file under dist/.
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci --no-audit --no-fund
echo "== typecheck"; npx tsc --noEmit
echo "== lint"; npx eslint .
echo "== bundle"; node scripts/bundle.mjs
chmod +x dist/tsunagu-agent.js dist/tsunagu-fleet.js
