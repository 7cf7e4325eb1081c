#!/usr/bin/env bash
# Typecheck, lint, bundle each binary into one file under dist/, then the
# device's release archive dist/tsunagu-agent-<version>.tar.gz (docs/install.md).
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci --no-audit --no-fund
echo "== typecheck"; npx tsc --noEmit
echo "== lint"; npx eslint .
echo "== bundle"; node scripts/bundle.mjs
chmod +x dist/tsunagu-agent.js dist/tsunagu-fleet.js
echo "== release archive"; bash scripts/release-archive.sh
