// Bundles each binary into one file. Used by build.sh and by the test runner,
// so that end-to-end tests exercise exactly what ships.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';

// Modules the libraries load but the device never runs, replaced by empty
// ones: dockerode's SSH transport (ssh2, cpu-features), BuildKit sessions
// (grpc, protobufjs) and image builds and archive uploads (tar-fs) — the agent
// only talks to the engine over its unix socket and never builds; MQTT.js's
// SOCKS proxy support (socks; the agent never sets `socksProxy`) and its
// Web Worker timers (worker-timers; chosen only in a browser); pino's
// transports in worker threads (thread-stream; logs go to a file descriptor,
// synchronously). ~15 MB of resident memory and ~140 KB of bundle that every
// start would parse, and node's worker_threads that pino would load for nothing.
const unusedOnDevice = ['ssh2', 'cpu-features', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs', 'tar-fs', 'socks', 'worker-timers', 'thread-stream'];
const stubUnused = {
  name: 'stub-unused',
  setup(b) {
    const filter = new RegExp(`^(${unusedOnDevice.map((m) => m.replace(/[/.]/g, '\\$&')).join('|')})(/.*)?$`);
    b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'stub' }));
    b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
  },
};

// The version is written once, in package.json; common/version.ts reads it
// there when run from source, and the bundles get it as a literal instead, so
// that a shipped binary needs no package.json beside it.
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const bakeVersion = {
  name: 'bake-version',
  setup(b) {
    b.onLoad({ filter: /[\\/]common[\\/]version\.ts$/ }, () => ({ contents: `export const TSUNAGU_VERSION = ${JSON.stringify(version)};`, loader: 'ts' }));
  },
};

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node18',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  banner: { js: '#!/usr/bin/env node' },
  // TSUNAGU_BUNDLE_KEEP_NAMES=1: classes and functions keep their names, so that a heap
  // snapshot of the agent (the soak's TSUNAGU_SOAK_HEAPSNAPSHOT_MINUTES) reads as the source.
  ...(process.env.TSUNAGU_BUNDLE_KEEP_NAMES === '1' ? { keepNames: true } : {}),
};

/**
 * Another program bundled as the agent is (the same stubs and settings): the
 * bench's floor (bench/floor/floor-program.ts) must cost what it would cost
 * shipped the agent's way.
 */
export async function bundleLikeAgent(entry, outfile) {
  await build({ ...common, entryPoints: [entry], outfile, plugins: [stubUnused, bakeVersion] });
  return { file: outfile, bytes: statSync(outfile).size };
}

export async function bundleAll() {
  mkdirSync('dist', { recursive: true });
  // dist/ sits under a "type": "module" package; the bundles are CommonJS.
  writeFileSync('dist/package.json', '{ "type": "commonjs" }\n');
  await build({ ...common, entryPoints: ['agent/main.ts'], outfile: 'dist/tsunagu-agent.js', plugins: [stubUnused, bakeVersion] });
  // The fleet side runs beside node_modules and keeps its native SQLite driver there.
  await build({ ...common, entryPoints: ['provisioning/main.ts'], outfile: 'dist/tsunagu-fleet.js', external: ['better-sqlite3'], plugins: [stubUnused, bakeVersion] });
  return ['dist/tsunagu-agent.js', 'dist/tsunagu-fleet.js'].map((f) => ({ file: f, bytes: statSync(f).size }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const { file, bytes } of await bundleAll()) console.log(`${file}\t${(bytes / 1024).toFixed(1)} KiB`);
}
