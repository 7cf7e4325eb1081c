// Real Docker services for the integration tests: a private dockerd, a local
// registry on 127.0.0.1:5000, and tiny test images built from busybox-static.
// Imported by scripts/run-tests.mjs; usable alone:
//   node -e "import('./scripts/test-services.mjs').then(m => m.startDockerServices())"
//
// Why a private dockerd with its own --data-root (/var/lib/tsunagu-test-docker)
// rather than the machine's default daemon: the tests create, remove and adopt
// containers and must never see or touch a developer's own containers; two
// daemons must never share one data root (each assumes it owns it); and a
// persistent data root keeps the test images between runs, so the second run
// only checks fingerprints. Its own socket, pidfile and exec-root (which also
// holds the containerd it starts) keep it apart from any other dockerd.
// Networking is off (--bridge=none --iptables=false --ip-masq=false): test
// containers run with network mode `none` or `host`, and nothing leaves loopback.
/* global fetch, AbortSignal */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * Paths of one test dockerd. `TSUNAGU_TEST_DOCKER_INSTANCE=name` gives a
 * checkout its own daemon (socket, data root, exec root, pidfile), so that two
 * test runs on one machine (two worktrees) never clean up each other's
 * containers; tests that restart the engine start a further instance.
 */
export function dockerInstance(name = process.env.TSUNAGU_TEST_DOCKER_INSTANCE ?? '') {
  if (name !== '' && !/^[a-z0-9-]{1,20}$/.test(name)) throw new Error(`bad docker instance name ${JSON.stringify(name)}`);
  const base = name === '' ? 'tsunagu-test-docker' : `tsunagu-test-docker-${name}`;
  const socket = `/run/${base}.sock`;
  return { socket, host: `unix://${socket}`, dataRoot: `/var/lib/${base}`, execRoot: `/run/${base}`, pidfile: `/run/${base}.pid` };
}

const DEFAULT_INSTANCE = dockerInstance();
export const DOCKER_SOCKET = DEFAULT_INSTANCE.socket;
export const DOCKER_HOST = DEFAULT_INSTANCE.host;
export const REGISTRY = '127.0.0.1:5000';
/** Every container a test creates carries this label; cleanup goes by it, never by name. */
// Not under io.tsunagu.: the agent reserves that prefix and refuses it in desired states.
export const TEST_LABEL = 'tsunagu.test';

/** Bump when the recipe below changes so that cached images are rebuilt. */
const RECIPE_VERSION = 2;

const verbose = Boolean(process.env.TSUNAGU_TEST_VERBOSE);
const log = (msg) => { if (verbose) console.log(`[test-services] ${msg}`); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function ensureDebianPackages() {
  const wanted = [
    ['dockerd', 'docker.io', () => have('dockerd')],
    ['docker-registry', 'docker-registry', () => have('docker-registry')],
    ['busybox', 'busybox-static', () => isStaticBusybox()],
  ];
  const missing = wanted.filter(([, , ok]) => !ok()).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`missing Debian packages: ${missing.join(' ')} (run as root or install them)`);
  console.log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Installing docker.io would start the system's docker.service with its
  // default bridge and iptables rules; policy-rc.d (exit 101) is Debian's way
  // to install a daemon without starting it. Only a file we created is removed.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\n# tsunagu test-services: no daemon starts during package installation\nexit 101\n', { mode: 0o755 });
  try {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
    if (r.status !== 0) throw new Error('apt-get install failed');
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
}

/** The image needs a busybox that runs without a libc in the rootfs. */
function isStaticBusybox() {
  if (!existsSync('/bin/busybox')) return false;
  // A static ELF has no PT_INTERP program header; `ldd` says "not a dynamic executable".
  const r = spawnSync('ldd', ['/bin/busybox'], { encoding: 'utf8' });
  return /not a dynamic executable|statically linked/.test(`${r.stdout}${r.stderr}`);
}

/** Prefer Debian's CLI: it matches the daemon's API version. */
function dockerCli() {
  return existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
}

function docker(args, options = {}) {
  const host = options.host ?? DOCKER_HOST;
  const r = spawnSync(dockerCli(), args, { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: host }, ...options });
  if (r.status !== 0 && !options.allowFail) throw new Error(`docker ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
  return r;
}

function dockerAnswers(instance = DEFAULT_INSTANCE) {
  return existsSync(instance.socket) && docker(['info', '--format', '{{.ServerVersion}}'], { allowFail: true, host: instance.host }).status === 0;
}

async function waitFor(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * Start a test dockerd (or reuse one that answers on the instance's socket).
 * Returns undefined when reused, else the child and a promise of its exit.
 */
export async function startDockerd(stateDir, instance = DEFAULT_INSTANCE) {
  if (dockerAnswers(instance)) { log('reusing dockerd'); return undefined; }
  // An empty config file: the machine's /etc/docker/daemon.json (hosts, bridge
  // settings) must not leak into the test daemon and clash with our flags.
  const config = join(stateDir, 'daemon.json');
  writeFileSync(config, '{}\n');
  const logFile = join(stateDir, 'dockerd.log');
  const out = openSync(logFile, 'a');
  const child = spawn('dockerd', [
    '--bridge=none', '--iptables=false', '--ip-masq=false',
    `--data-root=${instance.dataRoot}`, `--exec-root=${instance.execRoot}`, `--pidfile=${instance.pidfile}`,
    `--host=${instance.host}`, `--config-file=${config}`,
  ], { stdio: ['ignore', out, out], detached: true });
  child.unref();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let gone = false;
  void exited.then(() => { gone = true; });
  await waitFor('dockerd', () => {
    if (gone) throw new Error(`dockerd exited at start; see ${logFile}:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    return dockerAnswers(instance);
  }, 60_000);
  log(`started dockerd pid ${child.pid}`);
  return { child, exited };
}

async function registryAnswers() {
  try {
    const res = await fetch(`http://${REGISTRY}/v2/`, { signal: AbortSignal.timeout(1000) });
    return res.status === 200;
  } catch {
    return false;
  }
}

async function startRegistry(stateDir) {
  if (await registryAnswers()) { log('reusing registry'); return undefined; }
  const storage = join(stateDir, 'registry');
  mkdirSync(storage, { recursive: true });
  const config = join(stateDir, 'registry.yml');
  writeFileSync(config, [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${REGISTRY}`,
    '',
  ].join('\n'));
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', verbose ? 'inherit' : 'ignore'] });
  let gone = false;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  void exited.then(() => { gone = true; });
  await waitFor('docker-registry', async () => {
    if (gone) throw new Error('docker-registry exited at start (is port 5000 taken?)');
    return registryAnswers();
  }, 30_000);
  log(`started registry pid ${child.pid}`);
  return { child, exited };
}

// The loop keeps PID 1 responsive to SIGTERM (a bare `sleep` as PID 1 would
// ignore it and every stop would wait for the kill timeout).
const IDLE = 'trap "exit 0" TERM INT; cat /VERSION; sleep 1000000 & wait';

/** What each test image is; `build` names the local tag, `ref` the pushed one. */
const IMAGE_SPECS = {
  busybox1: { repo: 'tsunagu-test/busybox', tag: '1', version: '1', changes: [`CMD ["/bin/sh","-c",${JSON.stringify(IDLE)}]`] },
  busybox2: { repo: 'tsunagu-test/busybox', tag: '2', version: '2', changes: [`CMD ["/bin/sh","-c",${JSON.stringify(IDLE)}]`] },
  // Exits with code 3 shortly after start: a crash loop.
  crash: { repo: 'tsunagu-test/crash', tag: '1', version: 'crash', changes: ['CMD ["/bin/sh","-c","sleep 0.2; exit 3"]'] },
  // Runs fine but its own healthcheck always fails.
  unhealthy: {
    repo: 'tsunagu-test/unhealthy', tag: '1', version: 'unhealthy',
    changes: [`CMD ["/bin/sh","-c",${JSON.stringify(IDLE)}]`, 'HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD false'],
  },
};

function buildRootfs(dir, version) {
  for (const sub of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'tmp', 'etc', 'proc', 'sys', 'dev']) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, 'bin/busybox'), readFileSync('/bin/busybox'), { mode: 0o755 });
  const applets = spawnSync('/bin/busybox', ['--list-full'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const path of applets) {
    if (path === 'bin/busybox' || existsSync(join(dir, path))) continue;
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    symlinkSync('/bin/busybox', join(dir, path));
  }
  writeFileSync(join(dir, 'VERSION'), `${version}\n`);
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
}

/**
 * Build (or find cached) and push one image. A fingerprint label over the
 * busybox binary and the recipe makes the second run a single inspect.
 */
function ensureImage(spec, busyboxHash, stateDir) {
  const fingerprint = createHash('sha256').update(JSON.stringify({ RECIPE_VERSION, busyboxHash, spec })).digest('hex').slice(0, 16);
  const build = `tsunagu-test-build/${spec.repo.split('/')[1]}:${spec.tag}`;
  const ref = `${REGISTRY}/${spec.repo}:${spec.tag}`;
  const have = docker(['image', 'inspect', '--format', '{{index .Config.Labels "io.tsunagu.test.fingerprint"}}', build], { allowFail: true });
  if (have.status !== 0 || have.stdout.trim() !== fingerprint) {
    log(`building ${build}`);
    const dir = mkdtempSync(join(stateDir, 'rootfs-'));
    buildRootfs(dir, spec.version);
    const tar = `${dir}.tar`;
    // Fixed owner and mtime: the same inputs give the same layer digest.
    const t = spawnSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', dir, '-cf', tar, '.']);
    if (t.status !== 0) throw new Error(`tar failed: ${t.stderr}`);
    const changes = [...spec.changes, `LABEL io.tsunagu.test.fingerprint=${fingerprint}`].flatMap((c) => ['--change', c]);
    docker(['import', ...changes, tar, build]);
    rmSync(dir, { recursive: true, force: true });
    rmSync(tar, { force: true });
  }
  // Push every run: the registry's storage is a fresh temp dir when we started it.
  docker(['tag', build, ref]);
  docker(['push', '--quiet', ref]);
  // Untag the registry name so the supervisor under test really pulls it.
  docker(['rmi', '--no-prune', ref]);
  return ref;
}

function removeTestContainers() {
  const ids = docker(['ps', '-aq', '--filter', `label=${TEST_LABEL}`]).stdout.split('\n').filter(Boolean);
  if (ids.length > 0) docker(['rm', '-f', '-v', ...ids], { allowFail: true });
  // Named volumes the supervisor created in tests carry its ownership label; prune
  // removes only those no container uses. This daemon exists for tests only.
  docker(['volume', 'prune', '-f', '--filter', 'label=io.tsunagu.managed=true'], { allowFail: true });
}

export async function stopChild(started, name) {
  if (started === undefined || started.child.exitCode !== null) return;
  started.child.kill('SIGTERM');
  const timeout = sleep(30_000).then(() => 'timeout');
  if ((await Promise.race([started.exited, timeout])) === 'timeout') {
    console.warn(`[test-services] ${name} did not stop in 30 s; killing pid ${started.child.pid}`);
    started.child.kill('SIGKILL');
    await started.exited;
  }
}

/**
 * Start (or reuse) dockerd and the registry, build and push the test images.
 * `stop()` removes test containers (by label) and stops only the processes
 * this call started.
 * @returns {Promise<{dockerSocket: string, dockerHost: string, registry: string, images: Record<string, string>, stop(): Promise<void>}>}
 */
export async function startDockerServices() {
  ensureDebianPackages();
  const stateDir = mkdtempSync(join(tmpdir(), 'tsunagu-test-services-'));
  const started = Date.now();
  let dockerd;
  let registry;
  try {
    dockerd = await startDockerd(stateDir);
    registry = await startRegistry(stateDir);
    removeTestContainers(); // leftovers of an interrupted earlier run
    const busyboxHash = createHash('sha256').update(readFileSync('/bin/busybox')).digest('hex');
    const images = {};
    for (const [key, spec] of Object.entries(IMAGE_SPECS)) images[key] = ensureImage(spec, busyboxHash, stateDir);
    images.missing = `${REGISTRY}/tsunagu-test/busybox:does-not-exist`;
    // Present in the engine only, never in the registry: for helper containers of the tests themselves.
    images.local = 'tsunagu-test-build/busybox:1';
    log(`ready in ${Date.now() - started} ms`);
    return {
      dockerSocket: DOCKER_SOCKET,
      dockerHost: DOCKER_HOST,
      registry: REGISTRY,
      images,
      stop: async () => {
        try { removeTestContainers(); } catch { /* daemon already gone */ }
        await stopChild(registry, 'docker-registry');
        await stopChild(dockerd, 'dockerd');
        rmSync(stateDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stopChild(registry, 'docker-registry');
    await stopChild(dockerd, 'dockerd');
    rmSync(stateDir, { recursive: true, force: true });
    throw err;
  }
}
