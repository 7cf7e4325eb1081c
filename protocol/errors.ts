/**
 * Every error that crosses a module or wire boundary carries one of these
 * stable codes. Codes are part of the protocol: fleet managers branch on them,
 * so they are never renamed, only added. `docs/errors.md` documents each one
 * and a unit test keeps the two in step.
 */
export const ERROR_CODES = {
  // Parsing and validation of anything received.
  MALFORMED: 'the input is not valid JSON or not the expected binary layout',
  TOO_LARGE: 'the input exceeds the size limit for its kind',
  TOO_DEEP: 'the JSON nesting exceeds the depth limit',
  SCHEMA: 'the input does not match its schema',
  // Signed envelopes.
  UNSIGNED: 'the message carries no signature',
  BAD_SIGNATURE: 'the signature does not verify',
  NON_CANONICAL_SIGNATURE: 'the signature scalar S is not below the group order L (malleated)',
  UNKNOWN_KEY: 'the message is signed by a key the receiver does not trust',
  WRONG_DEVICE: 'the message is addressed to another device',
  EXPIRED: 'the message expired',
  NOT_YET_VALID: 'the message was issued in the future by more than the allowed skew',
  FLEET_TIME_AHEAD: 'the message was issued further ahead of the latest fleet time the device can justify than one message may move it',
  REPLAYED: 'the message was already accepted once',
  WRONG_TYPE: 'the message type is not the one expected on this topic',
  // Sealing.
  SEAL_OPEN_FAILED: 'a sealed box could not be opened with the recipient key',
  // Enrollment.
  CLAIM_REFUSED: 'the claim policy refused the device',
  CLAIM_PENDING: 'the device waits for an operator to approve it',
  DEVICE_REVOKED: 'an operator revoked the device (or the device a re-key request names): its key is refused for good',
  UNKNOWN_SERIAL: 'the serial is not on the allowlist',
  BAD_CLAIM_TOKEN: 'the claim token is wrong',
  STALE_REQUEST: 'the request timestamp is outside the accepted window',
  BROKER_ADMIN_FAILED: 'the broker refused an administrative change',
  // Local state and configuration.
  STATE_CORRUPT: 'a state file could not be read and was moved aside',
  CONFIG: 'the configuration is invalid',
  BOOTSTRAP_MISSING: 'no bootstrap file was found',
  NOT_ENROLLED: 'the device has no identity from the fleet yet',
  STATE_DIR_LOCKED: 'another running agent holds the state directory',
  // Commands.
  UNKNOWN_COMMAND: 'the command name is not known to this agent',
  COMMAND_FAILED: 'the command ran and failed',
  UNKNOWN_SERVICE: 'the service named is not part of the desired state',
  TIMEOUT: 'no answer arrived in time',
  // Fleet deployments: staged rollouts.
  BAD_ROLLOUT_STRATEGY: 'the rollout strategy (waves, bake time, failure threshold, what to do on a halt) is not valid',
  ROLLOUT_PHASE: "the rollout's phase does not allow the operation (resume a halted rollout, pause a finished one)",
  // Desired state and container supervision.
  UNSUPPORTED: 'the desired state uses a Compose feature this agent does not support',
  PULL_FAILED: 'an image could not be pulled; the running version is kept',
  DIGEST_MISMATCH: 'a registry sent content that does not match its digest (a pinned image changed, a corrupted layer); nothing of it runs, the running version is kept',
  RUNTIME_FAILED: 'the container engine refused or failed an operation',
  CANCELLED: 'the operation was cancelled by shutdown or by a newer desired state',
  OLD_VERSION: 'the desired state is older than the one the device holds (no downgrade)',
  MISSING_LABEL: 'a service requires a capability label this device lacks; it is not deployed',
  PROBATION_FAILED: 'a new configuration exited or turned unhealthy within its probation window; it was rolled back',
  POLICY_REFUSED: "the desired state asks for more than the device's own security policy allows",
  ADMISSION_REFUSED: 'the desired state does not fit this device (memory, architecture, devices, disk)',
  PRESSURE_EVICTED: 'the service is kept down to relieve memory or temperature pressure; it comes back when the pressure clears',
  NO_SPACE: "the engine's disk cannot hold an image, even after removing unused images; the running version is kept",
  REGISTRY_FAILED: 'a registry did not answer, refused the credentials, or sent a document that does not parse',
  // Runtime.
  RUNTIME_UNAVAILABLE: 'the container engine cannot be reached',
  PROBE_FAILED: 'the resources of the machine could not be read',
  // Outbox.
  OUTBOX_CLOSED: 'the outbox was used after close()',
  INTERNAL: 'an unexpected failure inside the agent or service',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The one error class of the project: a stable code plus a human message. */
export class TsunaguError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message ?? ERROR_CODES[code], options);
    this.name = 'TsunaguError';
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function isTsunaguError(err: unknown, code?: ErrorCode): err is TsunaguError {
  return err instanceof TsunaguError && (code === undefined || err.code === code);
}

/** Wrap anything thrown into a TsunaguError without losing the cause. */
export function asTsunaguError(err: unknown, fallback: ErrorCode = 'INTERNAL'): TsunaguError {
  if (err instanceof TsunaguError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new TsunaguError(fallback, message, undefined, { cause: err });
}
