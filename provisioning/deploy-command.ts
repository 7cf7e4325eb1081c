import { ERROR_CODES, TsunaguError, type ErrorCode } from '../protocol/errors.js';
import type { PreparedDeployment } from './deploy/compose-document.js';
import { prepareDeploymentFiles } from './deploy/deployment-files.js';
import type { DeviceResult } from './deploy/deploy-device.js';
import { jsonDeployOutput, textDeployOutput, type DeployOutput } from './deploy/deploy-output.js';
import { DEPLOY_EXIT, exitCodeFor } from './deploy/rollout.js';
import { formatSelector, parseSelector, type Selector } from './deploy/selector.js';
import { fleetPaths, loadFleetDir } from './fleet-dir.js';
import { callServe } from './serve-channel/serve-channel-client.js';
import { relayedEvent, relayedState, SERVE_CHANNEL_VERSION } from './serve-channel/serve-channel-wire.js';

export interface DeployOptions {
  dir: string;
  selector?: string;
  envFile?: string;
  registryAuth?: string[];
  timeout: string;
  /** commander's `--no-wait` sets wait to false. */
  wait: boolean;
  json?: boolean;
}


/**
 * `tsunagu-fleet deploy`: validate, then publish to one device or to every
 * device a selector matches, and follow the rollouts. Returns the exit status.
 * Nothing is sent unless the whole document validates.
 */
export async function runDeploy(first: string, second: string | undefined, o: DeployOptions): Promise<number> {
  if (o.selector !== undefined && second !== undefined) throw new TsunaguError('CONFIG', 'with --selector, give only the compose file (no device id)');
  if (o.selector === undefined && second === undefined) throw new TsunaguError('CONFIG', 'give a device id and a compose file, or --selector and a compose file');
  const selector = o.selector === undefined ? undefined : parseSelector(o.selector);
  const composePath = second ?? first;
  const timeoutSec = Number(o.timeout);
  if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) throw new TsunaguError('CONFIG', `--timeout must be a positive number of seconds, not "${o.timeout}"`);
  const prepared = prepareDeploymentFiles(composePath, o);

  const output = o.json
    ? jsonDeployOutput((t) => process.stdout.write(t))
    : textDeployOutput((t) => process.stdout.write(t), { tty: process.stdout.isTTY, multi: selector !== undefined });
  if (selector === undefined) {
    const viaServe = await deployThroughServe(o.dir, first, prepared, { wait: o.wait, timeoutMs: timeoutSec * 1000 }, output);
    if (viaServe !== undefined) return exitStatus(viaServe, output);
  }
  return deployDirectly(first, selector, prepared, { dir: o.dir, wait: o.wait, timeoutMs: timeoutSec * 1000 }, output);
}

function exitStatus(results: DeviceResult[], output: DeployOutput): number {
  output.summary(results);
  return Math.max(0, ...results.map((r) => (r.outcome.kind === 'published' ? DEPLOY_EXIT.applied : exitCodeFor(r.outcome))));
}

/**
 * The fast path: the running `serve` of this fleet, already connected and
 * holding the signer, publishes at once and relays the device's progress.
 * Undefined when no `serve` listens on the fleet's socket.
 */
async function deployThroughServe(dir: string, deviceId: string, prepared: PreparedDeployment, o: { wait: boolean; timeoutMs: number }, output: DeployOutput): Promise<DeviceResult[] | undefined> {
  const fleet = loadFleetDir(dir);
  const results: DeviceResult[] = [];
  let failure: TsunaguError | undefined;
  const call = callServe(fleetPaths(fleet.dir).serveSocket, {
    v: SERVE_CHANNEL_VERSION, verb: 'deploy', deviceId,
    compose: prepared.compose, secrets: prepared.secrets, registries: prepared.registries, wait: o.wait, timeoutMs: o.timeoutMs,
  }, (r) => {
    switch (r.kind) {
      case 'published': output.published(r.deviceId, r.version); break;
      case 'event': { const e = relayedEvent(r.event); if (e !== undefined) output.event(r.deviceId, e); break; }
      case 'state': { const s = relayedState(r.state); if (s !== undefined) output.state(r.deviceId, s); break; }
      case 'result': {
        const { kind: _result, ...result } = r;
        output.result(result);
        results.push(result);
        break;
      }
      case 'error': failure = new TsunaguError(r.code in ERROR_CODES ? r.code as ErrorCode : 'INTERNAL', r.message); break;
      case 'done': break;
    }
  });
  const onSignal = (): void => call.interrupt();
  process.once('SIGINT', onSignal);
  try {
    if (await call.finished === 'unavailable') return undefined;
  } finally {
    process.removeListener('SIGINT', onSignal);
  }
  if (failure !== undefined) throw failure;
  return results;
}

/** Without a `serve` (or for a selector): connect, read what the devices hold, sign and publish from here. */
async function deployDirectly(first: string, selector: Selector | undefined, prepared: PreparedDeployment, o: { dir: string; wait: boolean; timeoutMs: number }, output: DeployOutput): Promise<number> {
  // Loaded only here: the broker client, the database driver and the signer cost the fast path's start.
  const [{ operatorContext }, { deployToDevice }, { retainedInventoryLabels, selectTargets }, { defaultEd25519 }, { DeploymentStore }, { publishThroughServe, serveIsDriving }] = await Promise.all([
    import('./operator-commands.js'), import('./deploy/deploy-device.js'), import('./deploy/targets.js'), import('../protocol/ed25519.js'),
    import('./deployments/deployment-store.js'), import('./deployments/device-deployment.js'),
  ]);
  const ctx = await operatorContext(o.dir, 'deploy');
  let store: InstanceType<typeof DeploymentStore> | undefined;
  try {
    ctx.client.setMaxListeners(0);
    let targets: Awaited<ReturnType<typeof selectTargets>>;
    if (selector === undefined) {
      const device = ctx.database.byId(first);
      if (device?.status !== 'active') throw new TsunaguError('CONFIG', `no enrolled device "${first}" (see: tsunagu-fleet devices)`);
      targets = [{ deviceId: device.deviceId, boxPublicKey: device.boxPublicKey, labels: device.labels, labelsFrom: 'registry' }];
    } else {
      const devices = ctx.database.list();
      const unlabelled = devices.filter((d) => d.status === 'active' && Object.keys(d.labels).length === 0).map((d) => d.deviceId);
      targets = selectTargets(devices, selector, await retainedInventoryLabels(ctx.link, unlabelled));
      if (targets.length === 0) throw new TsunaguError('CONFIG', `no active device has the labels ${formatSelector(selector)} (see: tsunagu-fleet devices --labels)`);
    }
    const ed = defaultEd25519();
    const deps = { client: ctx.client, link: ctx.link, signer: ctx.signer, ed, fleetSignPublicKey: ctx.fleet.keys.signPublicKey };
    const abort = new AbortController();
    const onSignal = (): void => abort.abort();
    process.once('SIGINT', onSignal);
    // allSettled: one device's failure to publish must not close the connection under the others.
    // One device, while a `serve` on another host drives deployments: the document becomes that device's own
    // deployment, composed with the fleet's layers and published by `serve` (docs/deployments.md).
    // Without a `serve`, or with --selector (a one-off to the devices matching now), it is published here.
    store = selector === undefined ? new DeploymentStore(ctx.database) : undefined;
    const viaServe = store !== undefined && serveIsDriving(store, Date.now()) ? store : undefined;
    const settled = await Promise.allSettled(targets.map(async (t) => {
      const publish = viaServe !== undefined ? publishThroughServe({ store: viaServe, fleet: ctx.fleet, client: ctx.client, deviceId: t.deviceId, prepared }) : undefined;
      const r = await deployToDevice(deps, t, prepared, { wait: o.wait, timeoutMs: o.timeoutMs, observer: output, signal: abort.signal, ...(publish === undefined ? {} : { publish }) });
      output.result(r);
      return r;
    }));
    process.removeListener('SIGINT', onSignal);
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure !== undefined) throw failure.reason;
    return exitStatus(settled.map((s) => (s as PromiseFulfilledResult<DeviceResult>).value), output);
  } finally {
    await ctx.close();
  }
}
