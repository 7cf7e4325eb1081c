import * as z from 'zod';
import { readFileIfExists, writeFileAtomic } from '../common/atomic-file.js';
import type { Ed25519 } from '../protocol/ed25519.js';
import { newMessageId, signEnvelope, TRACEPARENT_PATTERN } from '../protocol/envelope.js';
import { TsunaguError } from '../protocol/errors.js';
import { checkSchema, parseJsonBytes } from '../protocol/json.js';
import { keyId } from '../protocol/keys.js';
import { fleetPaths, type FleetDir } from './fleet-dir.js';

const CounterSchema = z.object({ v: z.literal(1), ctr: z.number().int().nonnegative() }).strict();

/**
 * Signs fleet messages with the fleet key and a counter that only grows:
 * max(last + 1, now in ms), persisted before the message leaves. Taking the
 * clock as a floor keeps the counter rising even if the counter file is
 * lost, as long as the fleet host's clock is sane.
 */
export class FleetSigner {
  private readonly kid: string;
  private last: number;
  private readonly counterPath: string;

  constructor(private readonly fleet: FleetDir, private readonly ed: Ed25519, private readonly clock: () => number = Date.now) {
    this.kid = keyId(fleet.keys.signPublicKey);
    this.counterPath = fleetPaths(fleet.dir).counter;
    const bytes = readFileIfExists(this.counterPath);
    this.last = bytes === undefined ? 0 : checkSchema(CounterSchema, parseJsonBytes(bytes), this.counterPath).ctr;
  }

  private nextCounter(): number {
    this.last = Math.max(this.last + 1, this.clock());
    writeFileAtomic(this.counterPath, JSON.stringify({ v: 1, ctr: this.last }));
    return this.last;
  }

  /**
   * Take one counter value for the caller's own use (the version of a
   * desired state): no later message or reservation gets it or anything below.
   */
  reserveCounter(): number {
    return this.nextCounter();
  }

  /** Sign `data` of type `typ` for one device. Returns the message id and the wire bytes. */
  sign(args: { to: string; typ: string; data: unknown; lifetimeMs: number; traceparent?: string | undefined }): { id: string; bytes: Uint8Array } {
    if (args.traceparent !== undefined && !TRACEPARENT_PATTERN.test(args.traceparent)) {
      throw new TsunaguError('SCHEMA', 'traceparent must be a W3C trace context (00-<32 hex>-<16 hex>-<2 hex>)');
    }
    const id = newMessageId();
    const now = this.clock();
    const bytes = signEnvelope({
      typ: args.typ, id, to: args.to, iat: now, exp: now + args.lifetimeMs, ctr: this.nextCounter(),
      ...(args.traceparent === undefined ? {} : { tp: args.traceparent }),
      data: args.data,
    }, this.kid, this.fleet.keys.signSecretKey, this.ed);
    return { id, bytes };
  }
}
