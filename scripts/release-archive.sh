#!/usr/bin/env bash
# The device's release archive from an existing dist/tsunagu-agent.js:
#   dist/tsunagu-agent-<version>.tar.gz, one directory tsunagu-agent-<version>/
# holding the bundle, the systemd unit, the default config, install.sh,
# uninstall.sh and docs/install.md. Used by build.sh and the install tests.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$(node -p 'require("./package.json").version')
NAME="tsunagu-agent-$VERSION"
[ -f dist/tsunagu-agent.js ] || { echo "release-archive: dist/tsunagu-agent.js is missing: run node scripts/bundle.mjs" >&2; exit 1; }
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir "$STAGE/$NAME"
install -m 0644 dist/tsunagu-agent.js packaging/tsunagu-agent.service packaging/agent.yaml docs/install.md "$STAGE/$NAME/"
install -m 0755 packaging/install.sh packaging/uninstall.sh "$STAGE/$NAME/"
echo "$VERSION" > "$STAGE/$NAME/VERSION"
# Reproducible: same inputs, same archive bytes.
MTIME=$(git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$MTIME" -C "$STAGE" -cf - "$NAME" | gzip -n > "dist/$NAME.tar.gz"
echo "dist/$NAME.tar.gz	$(( $(stat -c %s "dist/$NAME.tar.gz") / 1024 )) KiB"
