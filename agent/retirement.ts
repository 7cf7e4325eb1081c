import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod/mini';
import { TsunaguError } from '../protocol/errors.js';
import { saveJsonState } from './state/json-state-file.js';
import type { ContainerRuntime } from './supervisor/container-runtime.js';

/**
 * A retired device (the `retire` command) keeps one file in its state dir,
 * saying so: without it, an agent started again would make new keys and
 * enroll as a new device from a bootstrap file left in /etc/tsunagu.
 */
const RETIRED_FILE = 'retired.json';
/** Kept through the wipe: `tsunagu-agent status` reads it. */
const STATUS_FILE = 'status.json';

const RetiredFileSchema = z.strictObject({ v: z.literal(1), deviceId: z.string(), fleetId: z.string(), at: z.number() });
export type RetiredFile = z.infer<typeof RetiredFileSchema>;

/** Refuse to run on a retired device, saying how to bring it back. */
export function refuseIfRetired(stateDir: string): void {
  const path = join(stateDir, RETIRED_FILE);
  // Its presence is what counts: an unreadable marker is not moved aside as other state is.
  if (!existsSync(path)) return;
  let marker: RetiredFile | undefined;
  try {
    const parsed = RetiredFileSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    marker = parsed.success ? parsed.data : undefined;
  } catch {
    marker = undefined;
  }
  const what = marker === undefined ? 'this device was retired' : `device ${marker.deviceId} of fleet ${marker.fleetId} was retired at ${new Date(marker.at).toISOString()}`;
  throw new TsunaguError('CONFIG', `${what}: the agent stays stopped. To enroll it again as a new device, remove ${path} and give it a bootstrap file`);
}

/** Stop and remove every container the agent owns (scope label); their anonymous volumes go with them. */
export async function removeOwnedContainers(runtime: ContainerRuntime, scope: string, stopTimeoutMs: number): Promise<string[]> {
  const owned = await runtime.listOwnedContainers(scope);
  for (const c of owned) {
    await runtime.stopContainer(c.id, stopTimeoutMs);
    await runtime.removeContainer(c.id);
  }
  return owned.map((c) => c.service);
}

/**
 * Remove everything in the state dir (keys, identity, bootstrap copy with its
 * claim token, sealed desired state, outbox, stored replies) but the status
 * file, then write the retired marker. Files are unlinked, not overwritten:
 * on flash storage an overwrite does not reach the old blocks either.
 */
export function wipeStateDir(stateDir: string, marker: RetiredFile): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(stateDir)) {
    if (name === STATUS_FILE) continue;
    rmSync(join(stateDir, name), { recursive: true, force: true });
    removed.push(name);
  }
  saveJsonState(join(stateDir, RETIRED_FILE), marker);
  return removed;
}
