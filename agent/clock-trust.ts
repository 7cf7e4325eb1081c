import { existsSync } from 'node:fs';

export type ClockTrustMode = 'auto' | 'always' | 'never';

/**
 * Whether the device clock may be used to judge message expiry (see
 * commands/replay-guard.ts for the whole rule). `auto` trusts it once
 * systemd-timesyncd says it is synchronised — the flag file exists only
 * after a successful NTP exchange since boot — which is exactly what a
 * board without RTC lacks until its network is up.
 */
export function clockTrust(mode: ClockTrustMode, syncFlag = '/run/systemd/timesync/synchronized'): () => boolean {
  switch (mode) {
    case 'always': return () => true;
    case 'never': return () => false;
    case 'auto': {
      // Once synchronised, a clock stays so for the life of the process.
      let synced = false;
      return () => (synced ||= existsSync(syncFlag));
    }
  }
}
