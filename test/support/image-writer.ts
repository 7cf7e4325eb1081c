import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Platform } from '../../agent/images/platform.js';

// Images written straight into the test registry through its HTTP API, so
// that a test controls what no `docker import` can set: the platform in the
// config, a multi-platform index, layer sizes. The engine pulls them as it
// pulls any image.

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

/** One layer: the tar as the engine unpacks it and the gzip it downloads. */
export interface Layer {
  tar: Buffer;
  gz: Buffer;
}

function layerOf(tar: Buffer): Layer {
  // Level 0 (stored blocks): random data does not compress anyway, and compressing costs seconds on a busy machine.
  return { tar, gz: gzipSync(tar, { level: 0 }) };
}

/** One ustar header block. */
function tarHeader(name: string, size: number, type: '0' | '5', mode: number): Buffer {
  const h = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string): void => { h.write(value, offset, length, 'ascii'); };
  const octal = (offset: number, length: number, n: number): void => field(offset, length, `${n.toString(8).padStart(length - 1, '0')}\0`);
  field(0, 100, name);
  octal(100, 8, mode);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 0);
  field(148, 8, '        ');
  field(156, 1, type);
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  let sum = 0;
  for (const byte of h) sum += byte;
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

/** A tar of one directory holding one file, built in memory: no 50 MB round trip through the disk. */
function tarOfFile(dir: string, file: string, data: Buffer): Buffer {
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([tarHeader(`${dir}/`, 0, '5', 0o755), tarHeader(`${dir}/${file}`, data.length, '0', 0o644), data, pad, Buffer.alloc(1024)]);
}

function tarDirectory(dir: string): Buffer {
  const out = `${dir}.tar`;
  // Fixed owner and mtime: the same content gives the same layer digest.
  const r = spawnSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', dir, '-cf', out, '.']);
  if (r.status !== 0) throw new Error(`tar failed: ${String(r.stderr)}`);
  const tar = readFileSync(out);
  rmSync(out, { force: true });
  return tar;
}

let busyboxLayer: Layer | undefined;

/** A busybox-static root filesystem (as scripts/test-services.mjs builds it): containers of it run. */
export function busyboxRootfs(): Layer {
  if (busyboxLayer !== undefined) return busyboxLayer;
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-rootfs-'));
  try {
    for (const sub of ['bin', 'tmp', 'etc', 'proc', 'sys', 'dev']) mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, 'bin/busybox'), readFileSync('/bin/busybox'), { mode: 0o755 });
    const applets = spawnSync('/bin/busybox', ['--list-full'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    for (const path of applets) {
      if (path === 'bin/busybox' || existsSync(join(dir, path))) continue;
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      symlinkSync('/bin/busybox', join(dir, path));
    }
    busyboxLayer = layerOf(tarDirectory(dir));
    return busyboxLayer;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A layer holding one file of `bytes` random bytes at /data/blob: it neither compresses nor dedups. */
export function randomLayer(bytes: number): Layer {
  return layerOf(tarOfFile('data', 'blob', randomBytes(bytes)));
}

async function putBlob(registry: string, repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  if ((await fetch(`http://${registry}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status === 200) return digest;
  const start = await fetch(`http://${registry}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`upload start ${start.status}`);
  const location = new URL(start.headers.get('location') ?? '', `http://${registry}`);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', body: data, headers: { 'content-type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`blob upload ${put.status}: ${await put.text()}`);
  return digest;
}

async function putManifest(registry: string, repo: string, reference: string, body: Buffer, mediaType: string): Promise<void> {
  const res = await fetch(`http://${registry}/v2/${repo}/manifests/${reference}`, { method: 'PUT', body, headers: { 'content-type': mediaType } });
  if (res.status !== 201) throw new Error(`manifest upload ${res.status}: ${await res.text()}`);
}

export interface WrittenImage {
  /** `registry/repo:tag`. */
  ref: string;
  manifestDigest: string;
  manifestSize: number;
  platform: Platform;
  /** Download sizes of the layers, in order. */
  compressedBytes: number[];
  diffIds: string[];
}

/** Push an image (Docker schema 2) of these layers, built for `platform`; its command idles until stopped. */
export async function pushImage(registry: string, repo: string, tag: string, layers: Layer[], platform: Platform = { os: 'linux', architecture: 'amd64' }): Promise<WrittenImage> {
  const diffIds = layers.map((l) => sha256(l.tar));
  const config = Buffer.from(JSON.stringify({
    ...platform,
    config: { Cmd: ['/bin/sh', '-c', 'trap "exit 0" TERM INT; sleep 1000000 & wait'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    // One entry per layer, as a build writes them, and one that made none: the engine's history then tells layer sizes.
    history: [
      ...layers.map((_, i) => ({ created: '1970-01-01T00:00:00Z', created_by: `layer ${i}` })),
      { created: '1970-01-01T00:00:00Z', created_by: 'CMD', empty_layer: true },
    ],
  }));
  const layerDescriptors = [];
  for (const l of layers) layerDescriptors.push({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: l.gz.length, digest: await putBlob(registry, repo, l.gz) });
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MANIFEST,
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: await putBlob(registry, repo, config) },
    layers: layerDescriptors,
  }));
  await putManifest(registry, repo, tag, manifest, MANIFEST);
  return { ref: `${registry}/${repo}:${tag}`, manifestDigest: sha256(manifest), manifestSize: manifest.length, platform, compressedBytes: layers.map((l) => l.gz.length), diffIds };
}

/** Push an OCI index over images already pushed to the same repository. */
export async function pushIndex(registry: string, repo: string, tag: string, images: WrittenImage[]): Promise<string> {
  const type = 'application/vnd.oci.image.index.v1+json';
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: type,
    manifests: images.map((i) => ({ mediaType: MANIFEST, size: i.manifestSize, digest: i.manifestDigest, platform: i.platform })),
  }));
  await putManifest(registry, repo, tag, index, type);
  return `${registry}/${repo}:${tag}`;
}
