#!/bin/sh
# Remove the tsunagu agent. Keeps /var/lib/tsunagu (the device's identity) and
# /etc/tsunagu unless --purge: reinstalling then finds the device as it was.
set -eu

usage() {
  cat <<'USAGE'
Usage: sudo ./uninstall.sh [--purge]

Stops and removes the agent, its unit and its command.
  --purge, --wipe-state   also delete /var/lib/tsunagu (identity, keys, desired state),
                          /etc/tsunagu and the tsunagu system user: the device must enroll again
Containers the agent started are left running; remove them with:
  docker rm -f $(docker ps -aq --filter label=io.tsunagu.scope)
USAGE
}

PURGE=no
while [ $# -gt 0 ]; do
  case "$1" in
    --purge|--wipe-state) PURGE=yes; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

say() { printf 'tsunagu: %s\n' "$*"; }
[ "$(id -u)" -eq 0 ] || { echo "tsunagu: error: run as root" >&2; exit 1; }

UNIT=/etc/systemd/system/tsunagu-agent.service
if [ -d /run/systemd/system ]; then
  systemctl disable --now tsunagu-agent.service 2>/dev/null || true
elif command -v systemctl >/dev/null && [ -f "$UNIT" ]; then
  systemctl disable tsunagu-agent.service 2>/dev/null || true
fi
rm -f "$UNIT"
rm -rf "$UNIT.d"
[ ! -d /run/systemd/system ] || systemctl daemon-reload
rm -f /usr/bin/tsunagu-agent
rm -rf /usr/lib/tsunagu /usr/share/doc/tsunagu-agent
say "removed the agent and its unit"

if [ "$PURGE" = yes ]; then
  rm -rf /var/lib/tsunagu /etc/tsunagu
  if getent passwd tsunagu >/dev/null; then userdel tsunagu; fi
  if getent group tsunagu >/dev/null; then groupdel tsunagu; fi
  say "purged: state, config and the tsunagu user are gone; the device enrolls anew if installed again"
else
  say "kept /var/lib/tsunagu (identity) and /etc/tsunagu (config); --purge deletes them"
fi
