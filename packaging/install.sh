#!/bin/sh
# Install the tsunagu agent from this release archive (Debian 12, Raspberry Pi OS 12).
#   sudo ./install.sh [--bootstrap FILE] [--no-start]
# Idempotent: running it again upgrades the agent and keeps config and state.
set -eu

usage() {
  cat <<'USAGE'
Usage: sudo ./install.sh [--bootstrap FILE] [--no-start]

Installs the tsunagu agent:
  /usr/lib/tsunagu/tsunagu-agent.js       the agent (one file, any architecture)
  /usr/bin/tsunagu-agent                  the command (status, doctor, run)
  /etc/tsunagu/agent.yaml                 config (kept if present; the new default goes to agent.yaml.dist)
  /var/lib/tsunagu                        state (0700, owned by the tsunagu system user)
  /etc/systemd/system/tsunagu-agent.service

  --bootstrap FILE   copy FILE to /etc/tsunagu/bootstrap.json (else drop tsunagu.json on the boot partition)
  --no-start         enable the unit but do not start it now
USAGE
}

HERE=$(cd "$(dirname "$0")" && pwd)
USER_NAME=tsunagu
LIB=/usr/lib/tsunagu
CONF=/etc/tsunagu
STATE=/var/lib/tsunagu
UNIT=/etc/systemd/system/tsunagu-agent.service
DOC=/usr/share/doc/tsunagu-agent
BOOTSTRAP=
START=yes

while [ $# -gt 0 ]; do
  case "$1" in
    --bootstrap) [ $# -ge 2 ] || { usage >&2; exit 2; }; BOOTSTRAP=$2; shift 2 ;;
    --no-start) START=no; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

say() { printf 'tsunagu: %s\n' "$*"; }
fail() { printf 'tsunagu: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root (sudo ./install.sh)"

# Node.js 18 or later: the distribution's own nodejs package is enough.
NODE=$(command -v node || true)
[ -n "$NODE" ] || fail "Node.js is not installed: apt-get install nodejs (Debian 12 ships 18, which is enough)"
NODE_MAJOR=$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$NODE_MAJOR" -ge 18 ] || fail "Node.js $("$NODE" --version 2>/dev/null || echo '?') is too old: 18 or later is needed (apt-get install nodejs)"
if [ "$NODE" != /usr/bin/node ]; then
  [ -x /usr/bin/node ] || fail "the unit runs /usr/bin/node, but node is at $NODE: link it (ln -s $NODE /usr/bin/node) or install Debian's nodejs"
fi
say "Node.js $("$NODE" --version) found"

# The container engine: its socket, and the group that may use it.
ENGINE_SOCKET=/var/run/docker.sock
if [ -f "$CONF/agent.yaml" ]; then
  CONFIGURED=$(sed -n 's/^[[:space:]]*socket:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$CONF/agent.yaml" | head -n 1)
  [ -z "$CONFIGURED" ] || ENGINE_SOCKET=$CONFIGURED
fi
ENGINE_GROUP=
if [ -S "$ENGINE_SOCKET" ]; then
  ENGINE_GROUP=$(stat -c %G "$ENGINE_SOCKET")
  [ "$ENGINE_GROUP" != root ] || fail "$ENGINE_SOCKET belongs to group root: the agent must not run as root; give the socket a group of its own (Docker's is docker)"
  say "container engine socket $ENGINE_SOCKET (group $ENGINE_GROUP)"
elif getent group docker >/dev/null; then
  ENGINE_GROUP=docker
  say "warning: no container engine socket at $ENGINE_SOCKET yet (is docker running? systemctl start docker); the agent enrolls and reports without it, and runs containers once it answers"
else
  say "warning: no container engine: apt-get install docker.io, then run this script again so the agent may use its socket; until then the agent enrolls and reports but runs no containers"
fi

# The system user, with access to the engine socket through its group.
if ! getent group "$USER_NAME" >/dev/null; then groupadd --system "$USER_NAME"; fi
if ! getent passwd "$USER_NAME" >/dev/null; then
  useradd --system --gid "$USER_NAME" --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin --comment "tsunagu agent" "$USER_NAME"
  say "created system user $USER_NAME"
fi
if [ -n "$ENGINE_GROUP" ]; then
  usermod --append --groups "$ENGINE_GROUP" "$USER_NAME"
  say "$USER_NAME may use the engine socket (member of $ENGINE_GROUP)"
fi

# Files. The bundle is replaced atomically: a running agent keeps its open copy.
install -d -m 0755 "$LIB" "$DOC"
install -m 0644 "$HERE/tsunagu-agent.js" "$LIB/.tsunagu-agent.js.new"
mv -f "$LIB/.tsunagu-agent.js.new" "$LIB/tsunagu-agent.js"
install -m 0644 "$HERE/VERSION" "$LIB/VERSION"
install -m 0644 "$HERE/install.md" "$DOC/install.md"
install -m 0755 "$HERE/uninstall.sh" "$LIB/uninstall.sh"
cat > /usr/bin/tsunagu-agent.new <<WRAPPER
#!/bin/sh
exec /usr/bin/node $LIB/tsunagu-agent.js "\$@"
WRAPPER
chmod 0755 /usr/bin/tsunagu-agent.new
mv -f /usr/bin/tsunagu-agent.new /usr/bin/tsunagu-agent

# Config: root's to write, the agent's to read. An existing one is never overwritten.
install -d -m 0750 -o root -g "$USER_NAME" "$CONF"
if [ -f "$CONF/agent.yaml" ]; then
  install -m 0640 -o root -g "$USER_NAME" "$HERE/agent.yaml" "$CONF/agent.yaml.dist"
  say "kept $CONF/agent.yaml; the default of this version is $CONF/agent.yaml.dist"
else
  install -m 0640 -o root -g "$USER_NAME" "$HERE/agent.yaml" "$CONF/agent.yaml"
fi
if [ -n "$BOOTSTRAP" ]; then
  [ -f "$BOOTSTRAP" ] || fail "bootstrap file $BOOTSTRAP not found"
  install -m 0640 -o root -g "$USER_NAME" "$BOOTSTRAP" "$CONF/bootstrap.json"
  say "bootstrap file installed as $CONF/bootstrap.json"
fi

# State: the agent's alone.
install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$STATE"
chown -R "$USER_NAME:$USER_NAME" "$STATE"

# The unit, and on systemd >= 254 a growing restart back-off (older ones do not know the keys).
install -m 0644 "$HERE/tsunagu-agent.service" "$UNIT"
SYSTEMD_VERSION=$(systemctl --version 2>/dev/null | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
if [ -n "$SYSTEMD_VERSION" ] && [ "$SYSTEMD_VERSION" -ge 254 ]; then
  install -d -m 0755 "$UNIT.d"
  printf '[Service]\nRestartSteps=8\nRestartMaxDelaySec=5min\n' > "$UNIT.d/restart-backoff.conf"
fi

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable tsunagu-agent.service
  if [ "$START" = yes ]; then
    systemctl restart tsunagu-agent.service
    say "started: systemctl status tsunagu-agent; tsunagu-agent status"
  else
    say "enabled; start it with: systemctl start tsunagu-agent"
  fi
elif command -v systemctl >/dev/null; then
  # A chroot or an image being built: enable works offline, starting needs a running systemd.
  systemctl enable tsunagu-agent.service
  say "systemd is not running here: the unit is enabled and starts at the next boot"
else
  say "systemd is not installed: start the agent yourself: sudo -u $USER_NAME /usr/bin/tsunagu-agent run"
fi
say "installed $(cat "$LIB/VERSION"); check the device with: tsunagu-agent doctor"
