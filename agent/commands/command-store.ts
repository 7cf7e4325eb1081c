import { join } from 'node:path';
import * as z from 'zod/mini';
import type { Logger } from '../../common/logger.js';
import { loadJsonState, saveJsonState } from '../state/json-state-file.js';
import { EMPTY_REPLAY_STATE, ReplayStateSchema, type ReplayState } from './replay-guard.js';

const CommandStateSchema = z.strictObject({
  v: z.literal(1),
  replay: ReplayStateSchema,
  /** Recent replies by command id (base64 of the signed reply), answered again on redelivery. */
  replies: z.array(z.tuple([z.string(), z.string()])),
});
type CommandState = z.infer<typeof CommandStateSchema>;

const KEEP_REPLIES = 64;

/**
 * The replay record and the recent replies, in one state file written
 * atomically. It is written when a command is accepted (before it runs, so
 * that a crash mid-command never lets it run twice), when its reply is
 * ready, and when a refusal is counted toward re-basing the fleet-time
 * horizon (fleet-horizon.ts): never while nothing happens.
 */
export class CommandStore {
  private state: CommandState;
  private readonly path: string;

  constructor(stateDir: string, logger: Logger) {
    this.path = join(stateDir, 'commands.json');
    const loaded = loadJsonState(this.path, CommandStateSchema);
    if (loaded.status === 'corrupt') {
      // The record is gone: until new messages rebuild it, a captured message
      // that has not expired could be accepted once. Expiry bounds that
      // window; the loss is logged loudly.
      logger.error({ code: loaded.error.code, movedTo: loaded.movedTo }, `${loaded.error.message}; replay record starts empty`);
    }
    this.state = loaded.status === 'ok' ? loaded.value : { v: 1, replay: EMPTY_REPLAY_STATE, replies: [] };
  }

  get replay(): ReplayState {
    return this.state.replay;
  }

  record(next: ReplayState): void {
    this.state = { ...this.state, replay: next };
    saveJsonState(this.path, this.state);
  }

  reply(commandId: string): Uint8Array | undefined {
    const hit = this.state.replies.find(([id]) => id === commandId);
    return hit === undefined ? undefined : new Uint8Array(Buffer.from(hit[1], 'base64'));
  }

  saveReply(commandId: string, reply: Uint8Array): void {
    const replies = [...this.state.replies.filter(([id]) => id !== commandId), [commandId, Buffer.from(reply).toString('base64')] as [string, string]];
    this.state = { ...this.state, replies: replies.slice(-KEEP_REPLIES) };
    saveJsonState(this.path, this.state);
  }
}
