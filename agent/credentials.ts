import type { Logger } from '../common/logger.js';
import { saveIdentity, type IdentityFile } from './identity.js';

/**
 * The device's broker password across a rotation. The fleet sends the new
 * password (sealed) first; the device stores it as `next` and answers; only
 * then does the fleet switch the broker to it. Until a connection succeeds
 * with `next`, the old password is kept, so a rotation interrupted at any
 * point (reply lost, fleet crashed before switching) never locks the device
 * out: it tries `next` first and falls back to the current one.
 */
export class Credentials {
  constructor(private identity: IdentityFile, private readonly stateDir: string, private readonly logger: Logger) {}

  get current(): IdentityFile {
    return this.identity;
  }

  /** Password to try for a connection attempt. */
  passwordFor(attempt: { authFailures: number }): string {
    const next = this.identity.nextPassword;
    if (next === undefined) return this.identity.grant.password;
    return attempt.authFailures % 2 === 0 ? next : this.identity.grant.password;
  }

  /** Remember the password a connection succeeded with; promotes `next` once it works. */
  connectedWith(password: string): void {
    const next = this.identity.nextPassword;
    if (next === undefined) return;
    if (password === next) {
      const { nextPassword: _promoted, ...rest } = this.identity;
      this.identity = { ...rest, grant: { ...rest.grant, password: next } };
      this.logger.info('rotated broker credential is in use');
    } else {
      // The fleet has not switched yet; keep `next` for the switch to come.
      return;
    }
    saveIdentity(this.stateDir, this.identity);
  }

  /** Store a new password before the fleet switches the broker to it. */
  stageNext(password: string): void {
    this.identity = { ...this.identity, nextPassword: password };
    saveIdentity(this.stateDir, this.identity);
  }
}
