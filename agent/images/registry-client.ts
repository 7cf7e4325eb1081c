import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import * as z from 'zod/mini';
import { asTsunaguError, TsunaguError } from '../../protocol/errors.js';
import { ENGLISH_ISSUES, parseJsonBytes } from '../../protocol/json.js';
import type { ImageReference } from './image-reference.js';
import type { FetchedDocument, ImageRegistry, RegistryLogin } from './image-registry.js';
import { INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MAX_MANIFEST_BYTES } from './oci-documents.js';
import { parseChallenge, type Challenge } from './registry-challenge.js';

export interface RegistryClientOptions {
  /**
   * Docker's directory of per-registry certificate authorities:
   * `<certsDir>/<host:port>/ca.crt` is trusted for that registry beside the
   * system's. Default /etc/docker/certs.d, where the engine reads them too.
   */
  certsDir?: string;
  /** Per request, redirects and the token exchange included. */
  timeoutMs?: number;
  /**
   * Registries spoken to as the engine speaks to its insecure ones: TLS
   * without verification, else plain HTTP. Default: loopback hosts, the
   * engine's default insecure range.
   */
  insecure?: (host: string) => boolean;
}

const TokenSchema = z.object({ token: z.optional(z.string().check(z.maxLength(65536))), access_token: z.optional(z.string().check(z.maxLength(65536))) })
  .check(z.refine((t) => t.token !== undefined || t.access_token !== undefined, 'no token'));

const MAX_REDIRECTS = 5;
const MAX_ERROR_BODY = 64 * 1024;

interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** 127.0.0.0/8, ::1 and localhost: the engine treats them as insecure registries by default. */
export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  if (name === 'localhost') return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  return name === '::1';
}

function failure(what: string, message: string, cause?: unknown): TsunaguError {
  return new TsunaguError('REGISTRY_FAILED', `${what}: ${message}`, undefined, cause === undefined ? undefined : { cause });
}

/**
 * The `ImageRegistry` adapter: a compact client of the registry HTTP API v2,
 * for what the engine does not tell before a pull. HTTPS,
 * with HTTP only for loopback registries whose TLS fails (the engine's rule
 * for its default insecure range); Basic or Bearer-token auth as the
 * registry's challenge asks (Docker Hub, GHCR and distribution's token auth
 * all use Bearer with Basic credentials at the token realm); redirects
 * followed (blobs are often served from a CDN), without the credentials
 * when the host changes. Every response body is size-limited.
 */
export class RegistryClient implements ImageRegistry {
  private readonly certsDir: string;
  private readonly timeoutMs: number;
  private readonly insecure: (host: string) => boolean;
  /** Hosts that answered plain HTTP after their TLS failed. */
  private readonly plainHttp = new Set<string>();
  /** Bearer tokens by host and scope; a 401 drops one. */
  private readonly tokens = new Map<string, string>();

  constructor(options: RegistryClientOptions = {}) {
    this.certsDir = options.certsDir ?? '/etc/docker/certs.d';
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.insecure = options.insecure ?? isLoopbackHost;
  }

  /** The manifest or index `ref` names, as the registry sends it (parsed, not yet checked). */
  async manifest(ref: ImageReference, login?: RegistryLogin, signal?: AbortSignal): Promise<FetchedDocument> {
    const what = `manifest of ${ref.apiHost}/${ref.repository}:${ref.reference}`;
    const res = await this.get(ref, `/v2/${ref.repository}/manifests/${ref.reference}`, {
      accept: [...INDEX_MEDIA_TYPES, ...MANIFEST_MEDIA_TYPES].join(', '), maxBytes: MAX_MANIFEST_BYTES, login, signal, what,
    });
    return { mediaType: res.headers['content-type'], body: parseDocument(res.body, what) };
  }

  /** A blob of `ref`'s repository, parsed as JSON (an image config). */
  async jsonBlob(ref: ImageReference, digest: string, maxBytes: number, login?: RegistryLogin, signal?: AbortSignal): Promise<unknown> {
    const what = `blob ${digest.slice(0, 19)} of ${ref.apiHost}/${ref.repository}`;
    const res = await this.get(ref, `/v2/${ref.repository}/blobs/${digest}`, { accept: '*/*', maxBytes, login, signal, what });
    return parseDocument(res.body, what);
  }

  private async get(ref: ImageReference, path: string, o: { accept: string; maxBytes: number; login: RegistryLogin | undefined; signal: AbortSignal | undefined; what: string }): Promise<Response> {
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(o.signal?.reason);
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => controller.abort(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    try {
      if (o.signal?.aborted) throw new TsunaguError('CANCELLED', `${o.what}: cancelled`);
      const scope = `repository:${ref.repository}:pull`;
      const tokenKey = `${ref.apiHost} ${scope}`;
      const url = new URL(`${await this.origin(ref.apiHost, controller.signal)}${path}`);
      const headers: Record<string, string> = { accept: o.accept };
      const cached = this.tokens.get(tokenKey);
      if (cached !== undefined) headers.authorization = `Bearer ${cached}`;
      let res = await this.follow(url, headers, o.maxBytes, controller.signal);
      if (res.status === 401) {
        this.tokens.delete(tokenKey);
        const challenge = parseChallenge(header(res.headers['www-authenticate']));
        if (challenge === undefined) throw failure(o.what, 'the registry demands credentials in a way this agent does not speak');
        const authorization = await this.answer(challenge, scope, o.login, controller.signal, o.what);
        if (challenge.scheme === 'bearer') this.tokens.set(tokenKey, authorization.slice('Bearer '.length));
        res = await this.follow(url, { ...headers, authorization }, o.maxBytes, controller.signal);
      }
      if (res.status === 401 || res.status === 403) throw failure(o.what, `refused (${res.status})${o.login === undefined ? ' without credentials' : ' with the credentials given'}`);
      if (res.status !== 200) throw failure(o.what, `HTTP ${res.status} ${registryMessage(res.body)}`.trim());
      return res;
    } catch (err) {
      if (o.signal?.aborted) throw new TsunaguError('CANCELLED', `${o.what}: cancelled`, undefined, { cause: err });
      if (err instanceof TsunaguError) throw err;
      throw failure(o.what, controller.signal.aborted ? String((controller.signal.reason as Error | undefined)?.message) : (err as Error).message, err);
    } finally {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** The credentials a challenge asks for: Basic as such, or a Bearer token from the realm. */
  private async answer(challenge: Challenge, scope: string, login: RegistryLogin | undefined, signal: AbortSignal, what: string): Promise<string> {
    const basic = login === undefined ? undefined : `Basic ${Buffer.from(`${login.username}:${login.password}`).toString('base64')}`;
    if (challenge.scheme === 'basic') {
      if (basic === undefined) throw failure(what, 'the registry demands credentials and the desired state carries none for it');
      return basic;
    }
    const realm = challenge.params.realm;
    if (realm === undefined) throw failure(what, 'the registry\'s token challenge names no realm');
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw failure(what, `the token realm "${realm}" is not a URL`);
    }
    // Credentials go to the realm only over TLS, or to an insecure (by default loopback) realm.
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.insecure(url.host))) throw failure(what, `the token realm ${url.origin} is not HTTPS`);
    if (challenge.params.service !== undefined) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', challenge.params.scope ?? scope);
    const res = await this.follow(url, basic === undefined ? {} : { authorization: basic }, 64 * 1024, signal);
    if (res.status !== 200) throw failure(what, `the token service refused (${res.status})${login === undefined ? ' without credentials' : ''}`);
    let parsed: z.infer<typeof TokenSchema>;
    try {
      parsed = TokenSchema.parse(parseJsonBytes(res.body, { maxBytes: 64 * 1024, maxDepth: 8 }), ENGLISH_ISSUES);
    } catch (err) {
      throw failure(what, 'the token service sent no token', err);
    }
    return `Bearer ${parsed.token ?? parsed.access_token ?? ''}`;
  }

  /** https://host, or http://host for an insecure registry that does not speak TLS (remembered). */
  private async origin(host: string, signal: AbortSignal): Promise<string> {
    if (this.plainHttp.has(host)) return `http://${host}`;
    if (!this.insecure(host)) return `https://${host}`;
    try {
      await this.send(new URL(`https://${host}/v2/`), {}, MAX_ERROR_BODY, signal);
      return `https://${host}`;
    } catch (err) {
      // Nothing listens: no reason to think it speaks HTTP rather than TLS.
      if (signal.aborted || (err as NodeJS.ErrnoException).code === 'ECONNREFUSED') throw err;
      this.plainHttp.add(host);
      return `http://${host}`;
    }
  }

  private async follow(url: URL, headers: Record<string, string>, maxBytes: number, signal: AbortSignal): Promise<Response> {
    let current = url;
    let sent = headers;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const res = await this.send(current, sent, maxBytes, signal);
      const location = header(res.headers.location);
      if (![301, 302, 303, 307, 308].includes(res.status) || location === undefined) return res;
      const next = new URL(location, current);
      if (next.protocol !== 'https:' && !(next.protocol === 'http:' && this.insecure(next.host))) throw new Error(`redirected to ${next.origin}, which is not HTTPS`);
      if (next.host !== current.host) {
        const { authorization: _dropped, ...rest } = sent;
        sent = rest;
      }
      current = next;
    }
    throw new Error(`more than ${MAX_REDIRECTS} redirects`);
  }

  private send(url: URL, headers: Record<string, string>, maxBytes: number, signal: AbortSignal): Promise<Response> {
    return new Promise((resolve, reject) => {
      const secure = url.protocol === 'https:';
      const tls = !secure ? {} : this.insecure(url.host) ? { rejectUnauthorized: false } : { ca: this.trustFor(url.host) };
      const options = { method: 'GET', headers: { 'user-agent': 'tsunagu-agent', ...headers }, signal, ...tls };
      const req = (secure ? httpsRequest : httpRequest)(url, options, (res) => {
        const status = res.statusCode ?? 0;
        // Error and redirect bodies are only read for a message.
        const limit = status === 200 ? maxBytes : MAX_ERROR_BODY;
        const declared = Number(res.headers['content-length'] ?? '0');
        if (declared > limit) {
          res.destroy();
          reject(new TsunaguError('TOO_LARGE', `${url.pathname}: ${declared} bytes exceeds the limit of ${limit}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            res.destroy();
            reject(new TsunaguError('TOO_LARGE', `${url.pathname}: more than ${limit} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolve({ status, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** The system's CAs plus the registry's own `ca.crt` under the certs directory, when there is one. */
  private trustFor(host: string): string[] | undefined {
    try {
      return [...rootCertificates, readFileSync(join(this.certsDir, host, 'ca.crt'), 'utf8')];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw err;
    }
  }
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function parseDocument(body: Buffer, what: string): unknown {
  try {
    return parseJsonBytes(body, { maxBytes: Math.max(body.length, 1), maxDepth: 32 });
  } catch (err) {
    throw failure(what, `not JSON: ${asTsunaguError(err).message}`, err);
  }
}

/** The first message of a registry's error body (`{"errors":[{"code","message"}]}`), when it has one. */
function registryMessage(body: Buffer): string {
  try {
    const parsed = parseJsonBytes(body, { maxBytes: MAX_ERROR_BODY, maxDepth: 8 }) as { errors?: { code?: unknown; message?: unknown }[] };
    const first = parsed.errors?.[0];
    const text = (v: unknown): string => (typeof v === 'string' ? v : '');
    return first === undefined ? '' : `${text(first.code)}: ${text(first.message)}`.slice(0, 300);
  } catch {
    return '';
  }
}
