import type { Logger } from '../../common/logger.js';
import { COMMAND_LIMITS, COMMAND_TYPE, CommandSchema, isCommandName, MAX_REPLY_MESSAGE_CHARS, REPLY_TYPE, type Command, type ReplyData } from '../../protocol/commands.js';
import type { Ed25519 } from '../../protocol/ed25519.js';
import { newMessageId, readableIds, signEnvelope, type SignedPayload } from '../../protocol/envelope.js';
import { asTsunaguError, TsunaguError } from '../../protocol/errors.js';
import type { DeviceEventBody } from '../../protocol/events/device-events.js';
import { checkSchema } from '../../protocol/json.js';
import { keyId, type KeyPairs } from '../../protocol/keys.js';
import { systemClock, type Clock } from '../clock.js';
import type { CommandStore } from './command-store.js';
import type { FleetVerifier } from './fleet-verifier.js';

/** What a command handler gets besides its arguments. */
export interface CommandContext {
  commandId: string;
  traceparent: string | undefined;
  logger: Logger;
}

/** One handler per command name; a missing one does not compile. */
export type CommandHandlers = {
  [N in Command['name']]: (args: Extract<Command, { name: N }>['args'], ctx: CommandContext) => Promise<unknown>;
};

export interface CommandChannelOptions {
  fleetId: string;
  /** Signature, addressee, replay and freshness (the same verifier the desired channel uses). */
  verifier: FleetVerifier;
  deviceKeys: KeyPairs;
  ed: Ed25519;
  store: CommandStore;
  handlers: CommandHandlers;
  /** Send a signed reply (queued while offline; replies are never dropped before metrics). */
  sendReply: (reply: Uint8Array) => Promise<void>;
  /** Report a refusal or a lifecycle step on the events topic. */
  emitEvent: (event: DeviceEventBody) => void;
  logger: Logger;
  /** Dates the replies. */
  clock?: Clock;
  /** Lifetime of a reply message (its `exp`). */
  replyLifetimeMs?: number;
}

/**
 * The device end of the signed command channel: verify, check replay and
 * freshness, run exactly once, answer exactly once per delivery.
 */
export class CommandChannel {
  private readonly clock: Clock;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly opts: CommandChannelOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  /** Handle one delivery on the cmd topic. Serialised: commands run one at a time, in arrival order. */
  deliver(bytes: Uint8Array): Promise<void> {
    const run = this.queue.then(() => this.handle(bytes));
    this.queue = run.catch((err: unknown) => {
      this.opts.logger.error({ err: asTsunaguError(err).toJSON() }, 'command handling failed');
    });
    return this.queue;
  }

  /** Resolves once every command delivered so far is handled and answered (its reply sent or queued). */
  idle(): Promise<void> {
    return this.queue;
  }

  private async handle(bytes: Uint8Array): Promise<void> {
    const { logger, store } = this.opts;
    let body: unknown;
    let kid: string;
    try {
      ({ body, kid } = this.opts.verifier.open(bytes, COMMAND_LIMITS));
    } catch (err) {
      // Nothing in an unverified message can be trusted, not even its id:
      // the refusal goes to the events topic only.
      const e = asTsunaguError(err, 'MALFORMED');
      logger.warn({ code: e.code }, `refused a message on the command topic: ${e.message}`);
      this.opts.emitEvent({ type: 'message-refused', topic: 'cmd', code: e.code, message: e.message });
      return;
    }
    let payload: SignedPayload;
    try {
      payload = this.opts.verifier.payloadOf(body, COMMAND_TYPE);
    } catch (err) {
      // The fleet signed it, so its id is the fleet's: a fleet waiting for a
      // reply by id gets one, unless the id itself is unreadable.
      const e = asTsunaguError(err, 'SCHEMA');
      const ids = readableIds(body);
      logger.warn({ code: e.code, ...(ids === undefined ? {} : { commandId: ids.id }) }, `refused a message on the command topic: ${e.message}`);
      this.opts.emitEvent({
        type: 'message-refused', topic: 'cmd', code: e.code, message: e.message,
        ...(ids === undefined ? {} : { id: ids.id }), ...(ids?.tp === undefined ? {} : { traceparent: ids.tp }),
      });
      if (ids !== undefined) await this.answer(ids, { re: ids.id, ok: false, code: e.code, message: e.message.slice(0, 2048) }, false);
      return;
    }
    const tp = payload.tp;
    const log = tp === undefined ? logger.child({ commandId: payload.id }) : logger.child({ commandId: payload.id, traceparent: tp });
    const verdict = this.opts.verifier.guard(store.replay, payload, kid);
    if (!verdict.accept) {
      if (verdict.next !== undefined) store.record(verdict.next);
      const cached = verdict.duplicate ? store.reply(payload.id) : undefined;
      if (cached !== undefined) {
        // A redelivery (QoS 1 after a reconnect): same answer, no second run.
        log.info('command delivered again; answering with the stored reply');
        await this.opts.sendReply(cached);
        return;
      }
      log.warn({ code: verdict.code }, `refused command: ${verdict.reason}`);
      this.opts.emitEvent({ type: 'message-refused', topic: 'cmd', id: payload.id, code: verdict.code, message: verdict.reason, ...(tp === undefined ? {} : { traceparent: tp }) });
      await this.answer(payload, { re: payload.id, ok: false, code: verdict.code, message: verdict.reason }, false);
      return;
    }
    // Recorded before it runs: a crash during the command must not let a redelivery run it again.
    store.record(verdict.next);
    let data: ReplyData;
    try {
      const command = checkSchema(CommandSchema, payload.data, 'command');
      log.info({ command: command.name }, 'running command');
      const result = await this.run(command, { commandId: payload.id, traceparent: tp, logger: log });
      data = result === undefined ? { re: payload.id, ok: true } : { re: payload.id, ok: true, result };
    } catch (err) {
      const e = unknownCommandAware(err, payload.data);
      log.warn({ code: e.code }, `command failed: ${e.message}`);
      data = { re: payload.id, ok: false, code: e.code, message: e.message.slice(0, MAX_REPLY_MESSAGE_CHARS) };
    }
    await this.answer(payload, data, true);
  }

  private run(command: Command, ctx: CommandContext): Promise<unknown> {
    const handler = this.opts.handlers[command.name] as (args: unknown, ctx: CommandContext) => Promise<unknown>;
    return handler(command.args, ctx);
  }

  private async answer(command: { id: string; tp?: string | undefined }, data: ReplyData, remember: boolean): Promise<void> {
    const now = this.clock.now();
    const reply = signEnvelope({
      typ: REPLY_TYPE, id: newMessageId(), to: this.opts.fleetId, iat: now, exp: now + (this.opts.replyLifetimeMs ?? 3_600_000),
      ...(command.tp === undefined ? {} : { tp: command.tp }),
      data,
    }, keyId(this.opts.deviceKeys.signPublicKey), this.opts.deviceKeys.signSecretKey, this.opts.ed);
    if (remember) this.opts.store.saveReply(command.id, reply);
    await this.opts.sendReply(reply);
  }
}

/** A command whose name is not known is UNKNOWN_COMMAND, not a generic schema error. */
function unknownCommandAware(err: unknown, data: unknown): TsunaguError {
  const name = (data as { name?: unknown } | null)?.name;
  if (typeof name === 'string' && !isCommandName(name)) {
    return new TsunaguError('UNKNOWN_COMMAND', `unknown command "${name.slice(0, 64)}"`);
  }
  return asTsunaguError(err, 'COMMAND_FAILED');
}
