import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './mosquitto.js';

/**
 * A registry of a test's own (docker-registry, as scripts/test-services.mjs
 * runs the shared one) on a free loopback port, with its storage on disk so
 * the test can stop it and damage what it serves without touching the
 * shared registry. The engine treats 127.0.0.0/8 as an insecure registry.
 */
export interface PrivateRegistry {
  host: string;
  /** The registry's filesystem storage root. */
  storage: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
  /** Path of a blob's bytes in the storage. */
  blobPath(digest: string): string;
  /** The image manifest of repo:reference (schema 2). */
  manifest(repo: string, reference: string): Promise<{ digest: string; layers: { digest: string }[]; config: { digest: string } }>;
}

export async function startPrivateRegistry(): Promise<PrivateRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-registry-'));
  const storage = join(dir, 'storage');
  mkdirSync(storage);
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = join(dir, 'registry.yml');
  writeFileSync(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\nhttp:\n  addr: ${host}\n`);
  let child: ChildProcess | undefined;
  const answers = async (): Promise<boolean> => {
    try {
      return (await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) })).status === 200;
    } catch {
      return false;
    }
  };
  const start = async (): Promise<void> => {
    child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
    const deadline = Date.now() + 20_000;
    while (!(await answers())) {
      if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${host}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null) return;
    await new Promise<void>((resolve) => { c.once('exit', () => resolve()); c.kill('SIGTERM'); });
  };
  await start();
  return {
    host, storage, start, stop,
    close: async () => { await stop(); rmSync(dir, { recursive: true, force: true }); },
    blobPath: (digest) => {
      const hex = digest.replace(/^sha256:/, '');
      return join(storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    },
    manifest: async (repo, reference) => {
      const res = await fetch(`http://${host}/v2/${repo}/manifests/${reference}`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
      if (res.status !== 200) throw new Error(`manifest ${repo}:${reference}: HTTP ${res.status}`);
      const body = await res.json() as { layers: { digest: string }[]; config: { digest: string } };
      return { digest: res.headers.get('docker-content-digest') ?? '', ...body };
    },
  };
}

function docker(dockerHost: string, args: string[]): string {
  const r = spawnSync('docker', args, { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: dockerHost } });
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * Build an idle image whose one layer no other image has (busybox and a random
 * file), push it to `ref` and remove it from the engine, so that deploying it
 * really downloads that layer. Returns the pushed digest.
 */
export function pushUniqueImage(dockerHost: string, ref: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-unique-'));
  try {
    const root = join(dir, 'root');
    mkdirSync(join(root, 'bin'), { recursive: true });
    writeFileSync(join(root, 'bin/busybox'), readFileSync('/bin/busybox'), { mode: 0o755 });
    for (const applet of ['sh', 'sleep', 'cat']) symlinkSync('busybox', join(root, 'bin', applet));
    writeFileSync(join(root, 'NONCE'), randomBytes(256 * 1024));
    const tar = join(dir, 'root.tar');
    const t = spawnSync('tar', ['--owner=0', '--group=0', '-C', root, '-cf', tar, '.']);
    if (t.status !== 0) throw new Error(`tar: ${t.stderr.toString()}`);
    docker(dockerHost, ['import', '--change', 'CMD ["/bin/sh","-c","trap \\"exit 0\\" TERM; sleep 1000000 & wait"]', tar, ref]);
    docker(dockerHost, ['push', '--quiet', ref]);
    const digest = docker(dockerHost, ['image', 'inspect', '--format', '{{index .RepoDigests 0}}', ref]).split('@')[1] ?? '';
    docker(dockerHost, ['rmi', ref]);
    return digest;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
