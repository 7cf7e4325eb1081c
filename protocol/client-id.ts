import { randomBytes } from 'node:crypto';

/**
 * The MQTT client id a device connects with. MQTT lets any client that
 * names a session's client id take that session over (and, with clean
 * start, destroy it), and Mosquitto does not tie a client id to an
 * account: whoever can log in at all can do it. So the id is a secret:
 * issued in the sealed enrollment grant, fresh at every grant, and never
 * derived from the device id, which every topic shows.
 *
 * Accepted forms: the secret one, and a device id (devices enrolled before
 * the secret ids used their device id). Never a `+`, `#` or `/`.
 */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$/;

/** Prefix of a secret client id; a device id never starts with it (device ids are `d-` + hex). */
export const SECRET_CLIENT_ID_PREFIX = 'dc-';

/** 192 random bits: nobody names the session without the grant. */
export function newSecretClientId(): string {
  return `${SECRET_CLIENT_ID_PREFIX}${randomBytes(24).toString('base64url')}`;
}

/** Whether a client id is a secret one (false for a device enrolled before them, whose client id is its device id). */
export function isSecretClientId(clientId: string): boolean {
  return clientId.startsWith(SECRET_CLIENT_ID_PREFIX) && CLIENT_ID_PATTERN.test(clientId);
}
