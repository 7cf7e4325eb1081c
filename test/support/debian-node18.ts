import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Debian 12's own `nodejs` 18 — what a device with nothing but its
 * distribution's packages runs the agent with — unpacked from the Debian
 * packages (not installed: it would replace the machine's Node 20). Its
 * builtins that Debian ships separately (/usr/share/nodejs) are bind-mounted
 * in a private mount namespace by the wrapper script. Cached between runs.
 */
const CACHE = '/var/cache/tsunagu-test/debian-node18';
const PACKAGES = ['nodejs=18.20.4+dfsg-1~deb12u3', 'libnode108', 'libc-ares2', 'libuv1', 'libbrotli1', 'libicu72', 'libnghttp2-14', 'node-acorn', 'node-cjs-module-lexer', 'node-undici'];

export function debianNode18(): string {
  const wrapper = join(CACHE, 'node18');
  if (existsSync(wrapper)) return wrapper;
  mkdirSync(join(CACHE, 'debs'), { recursive: true });
  const root = join(CACHE, 'root');
  let version = PACKAGES[0]!;
  // The security archive may move on to a newer 18.x: take whatever 18 it has.
  const policy = spawnSync('apt-cache', ['madison', 'nodejs'], { encoding: 'utf8' }).stdout;
  const v18 = /\|\s*(18\.[^\s|]+)\s*\|/.exec(policy)?.[1];
  if (v18 !== undefined) version = `nodejs=${v18}`;
  execFileSync('apt-get', ['download', version, ...PACKAGES.slice(1)], { cwd: join(CACHE, 'debs'), stdio: 'ignore' });
  for (const deb of readdirSync(join(CACHE, 'debs'))) execFileSync('dpkg', ['-x', join(CACHE, 'debs', deb), root]);
  writeFileSync(wrapper, `#!/bin/sh
mkdir -p /usr/share/nodejs
exec unshare -m sh -c 'mount --bind ${root}/usr/share/nodejs /usr/share/nodejs && LD_LIBRARY_PATH=${root}/usr/lib/x86_64-linux-gnu exec ${root}/usr/bin/node "$@"' node18 "$@"
`);
  chmodSync(wrapper, 0o755);
  return wrapper;
}
