import { fromBase64, fromUtf8 } from '../../protocol/bytes.js';
import { TsunaguError } from '../../protocol/errors.js';
import type { KeyPairs } from '../../protocol/keys.js';
import { openSealed } from '../../protocol/seal.js';
import { systemClock, type Clock } from '../clock.js';
import type { Credentials } from '../credentials.js';
import type { BrokerLink } from '../link/broker-link.js';
import type { Reporter } from '../reporting/reporter.js';
import type { CommandHandlers } from './command-channel.js';

/** What the service commands need from the container supervisor. */
export interface ServiceControl {
  restart(service: string): Promise<void>;
  stop(service: string): Promise<void>;
  start(service: string): Promise<void>;
  /** The last `lines` lines of the service's output, at most `maxBytes` in all. */
  logs(service: string, lines: number, maxBytes: number): Promise<string>;
}

export interface HandlerDeps {
  agentVersion: string;
  reporter: Reporter;
  credentials: Credentials;
  link: BrokerLink;
  deviceKeys: KeyPairs;
  /** Absent on a device without a container engine: service commands answer RUNTIME_UNAVAILABLE. */
  services: () => ServiceControl | undefined;
  maxLogBytes: number;
  /** Apply the persisted desired state again; resolves with its version, null when there is none. */
  rereadDesired?: () => Promise<number | null>;
  /**
   * Begin leaving service (the `retire` command). Called from the handler,
   * so the work must wait for the reply to be sent: it ends the session.
   */
  retire: () => void;
  clock?: Clock;
}

function serviceControl(deps: HandlerDeps): ServiceControl {
  const control = deps.services();
  if (control === undefined) throw new TsunaguError('RUNTIME_UNAVAILABLE', 'this agent runs no container engine connection');
  return control;
}

export function commandHandlers(deps: HandlerDeps): CommandHandlers {
  const clock = deps.clock ?? systemClock;
  return {
    ping: () => Promise.resolve({ pong: true, at: clock.now(), agentVersion: deps.agentVersion, uptimeSeconds: Math.round(process.uptime()) }),
    'report-now': async () => {
      const { inventory, metrics } = await deps.reporter.reportNow();
      return { inventoryAt: inventory.at, metricsAt: metrics.at };
    },
    restart: async ({ service }) => { await serviceControl(deps).restart(service); return { service, restarted: true }; },
    stop: async ({ service }) => { await serviceControl(deps).stop(service); return { service, stopped: true }; },
    start: async ({ service }) => { await serviceControl(deps).start(service); return { service, started: true }; },
    logs: async ({ service, lines }) => ({ service, text: await serviceControl(deps).logs(service, lines, deps.maxLogBytes) }),
    'rotate-credentials': ({ sealed }) => {
      const password = fromUtf8(openSealed(fromBase64(sealed, 'sealed'), deps.deviceKeys.boxSecretKey));
      if (password.length < 16 || password.length > 256) throw new TsunaguError('SCHEMA', 'the new password must be 16 to 256 characters');
      // Stored before the answer: the fleet switches the broker only after it.
      deps.credentials.stageNext(password);
      return Promise.resolve({ staged: true });
    },
    'reread-desired': async () => {
      await deps.link.resubscribe('desired');
      // A retained message, if the broker has one, arrives through the subscription;
      // the persisted one is applied again either way (a broker that lost it, a container removed by hand).
      const reapplied = deps.rereadDesired === undefined ? null : await deps.rereadDesired();
      return { resubscribed: true, reapplied };
    },
    retire: () => {
      deps.retire();
      return Promise.resolve({ retiring: true });
    },
  };
}
