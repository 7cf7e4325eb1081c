import { isTsunaguError, type ErrorCode } from '../protocol/errors.js';

/**
 * What an operator can do about a fatal error of `tsunagu-fleet`, by code.
 * The message says what went wrong; the hint says what to try. Codes whose
 * message already names the fix (most CONFIG errors) have none.
 */
const HINTS: Partial<Record<ErrorCode, string>> = {
  BROKER_ADMIN_FAILED: 'check that the broker runs and loads the dynamic-security plugin, and that fleet.json holds the fleet account it knows (see docs/provisioning.md §1)',
  TIMEOUT: 'the device may be offline: see its link with `tsunagu-fleet status DEVICE`, or raise --timeout',
  STATE_CORRUPT: 'a fleet file was unreadable and was moved aside; restore it from a backup of the fleet directory',
  MALFORMED: 'the file is not valid JSON or YAML: check it with a linter, then run the command again',
  SCHEMA: 'a field has the wrong type or name: see docs/protocol.md for the format',
  UNSUPPORTED: 'the agent supports a subset of Compose: see docs/protocol.md §9.7 ("The Compose subset") for the fields it accepts',
  TOO_LARGE: 'split the document or drop what the device does not need',
};

/** Connection failures carry no code of ours: recognise them by their system error. */
function connectionHint(err: Error): string | undefined {
  const code = (err as { code?: unknown }).code ?? (err.cause as { code?: unknown } | undefined)?.code;
  if (code === 'ECONNREFUSED') return 'nothing listens at the broker URL in fleet.json: start the broker, or `tsunagu-fleet serve` for a fleet with the embedded broker';
  return undefined;
}

export function hintFor(err: Error): string | undefined {
  return (isTsunaguError(err) ? HINTS[err.code] : undefined) ?? connectionHint(err);
}
