import { COMMAND_LIMITS } from '../../protocol/commands.js';
import type { Ed25519 } from '../../protocol/ed25519.js';
import { decodeEnvelope, SignedPayloadSchema, verifySignedBody, type SignedPayload } from '../../protocol/envelope.js';
import { TsunaguError } from '../../protocol/errors.js';
import { checkSchema, type JsonLimits } from '../../protocol/json.js';
import { bootClock } from '../boot-clock.js';
import type { Clock } from '../clock.js';
import type { BootInstant } from './fleet-horizon.js';
import { guardFleetMessage, type GuardVerdict, type ReplayState } from './replay-guard.js';

export interface FleetVerifierOptions {
  deviceId: string;
  /** Fleet signing keys the device trusts, by key id. */
  fleetKeys: ReadonlyMap<string, Uint8Array>;
  ed: Ed25519;
  clock: Clock;
  /** Whether the device clock may judge expiry now (clock-trust.ts). */
  clockTrusted: () => boolean;
  /** The device's boot clock, for the fleet-time horizon (default: the kernel's, see boot-clock.ts). */
  bootClock?: () => BootInstant;
}

/**
 * Everything the device checks on a message the fleet signed: the
 * signature against the fleet keys, the message type, the addressee, and
 * for commands replay and freshness (replay-guard.ts). One per session,
 * shared by the command and desired-state channels, so both trust the same
 * keys and the same clock.
 */
export class FleetVerifier {
  private readonly bootClock: () => BootInstant;

  constructor(private readonly opts: FleetVerifierOptions) {
    this.bootClock = opts.bootClock ?? bootClock();
  }

  /**
   * The signature only: the body a fleet key signed and that key's id. The
   * body's shape is not checked yet, so that a signed but malformed command
   * can still be answered by its id.
   */
  open(bytes: Uint8Array, limits: JsonLimits = COMMAND_LIMITS): { body: unknown; kid: string } {
    const env = decodeEnvelope(bytes, limits);
    return { body: verifySignedBody(env, (kid) => this.opts.fleetKeys.get(kid), this.opts.ed, limits), kid: env.kid };
  }

  /** The signed payload of an opened body, of the type its topic carries. */
  payloadOf(body: unknown, expectedType: string): SignedPayload {
    const payload = checkSchema(SignedPayloadSchema, body, 'payload');
    if (payload.typ !== expectedType) throw new TsunaguError('WRONG_TYPE', `expected ${expectedType}, got ${payload.typ}`);
    return payload;
  }

  /**
   * Signature, type and addressee, for a message judged by rules of its own
   * rather than by the replay record (a desired state: its versions rise, and
   * the retained copy is read again at every start).
   */
  verifyAddressed(bytes: Uint8Array, expectedType: string, limits: JsonLimits): SignedPayload {
    const payload = this.payloadOf(this.open(bytes, limits).body, expectedType);
    if (payload.to !== this.opts.deviceId) throw new TsunaguError('WRONG_DEVICE', `addressed to ${payload.to}`);
    return payload;
  }

  /** Addressee, replay and freshness of a command signed with `kid`, against the replay record. */
  guard(replay: ReplayState, payload: SignedPayload, kid: string): GuardVerdict {
    return guardFleetMessage(replay, payload, {
      deviceId: this.opts.deviceId, kid, now: this.opts.clock.now(), clockTrusted: this.opts.clockTrusted(), boot: this.bootClock(),
    });
  }
}
