import { DeploymentWorld } from '../../test/support/deployment-world.js';
import { dockerTestEnv } from '../../test/support/test-docker.js';
import { LABELS } from '../../agent/supervisor/container-labels.js';
import type { FigureResult } from '../figure.js';
import { summarize } from '../stats.js';
import { StartEvents } from './deploy-latency.js';

const SERVICE = 'app';

/** The agent's own log time of its grant (pino's ISO time), in ms since the epoch. */
function enrolledAt(lines: readonly { msg?: unknown; time?: unknown }[]): number {
  const line = lines.find((l) => l.msg === 'enrolled');
  if (typeof line?.time !== 'string') throw new Error('the agent did not log its enrollment');
  return Date.parse(line.time);
}

/**
 * A new device powered on with the bootstrap file only, in a fleet of its
 * own as an operator has it (`init` with the embedded broker, `serve` as
 * shipped), until its workload's container starts, in pairs, alternating:
 * - automatic: a deployment matching every device (`--selector os=linux`)
 *   exists before the power-on; nothing else is typed;
 * - by hand: no deployment; the moment the agent is enrolled and online, the
 *   operator types `tsunagu-fleet deploy DEVICE compose.yaml` (no human
 *   delay counted: the lower bound of doing it by hand).
 * Each device is new (its own identity and enrollment) and the image is
 * already on the engine's disk, so the pull costs nothing in either.
 */
export async function measurePowerOn(pairs: number, log: (line: string) => void): Promise<FigureResult[]> {
  const world = await DeploymentWorld.start('tsunagu-bench-poweron-');
  const events = new StartEvents();
  const image = dockerTestEnv().images.busybox1;
  const compose = world.composeFile({ services: { [SERVICE]: world.service(image) } });
  const autoMs: number[] = [];
  const afterEnrollMs: number[] = [];
  const handMs: number[] = [];
  try {
    await events.open(world.docker, world.testScope);
    for (let i = 0; i < pairs; i++) {
      const handScope = `${world.testScope}-hand-${i}`;
      const handStarted = events.next((a) => a[LABELS.scope] === handScope && a[LABELS.service] === SERVICE);
      const h0 = Date.now();
      const hand = await world.addDevice(`hand-${i}`);
      await world.ok('deploy', hand.deviceId, compose);
      handMs.push((await handStarted) - h0);
      await hand.agent.stop();

      await world.ok('deployment', 'create', `auto-${i}`, '--selector', 'os=linux', compose);
      const autoScope = `${world.testScope}-auto-${i}`;
      const autoStarted = events.next((a) => a[LABELS.scope] === autoScope && a[LABELS.service] === SERVICE);
      const a0 = Date.now();
      const auto = await world.addDevice(`auto-${i}`);
      const at = await autoStarted;
      autoMs.push(at - a0);
      afterEnrollMs.push(at - enrolledAt(auto.agent.lines));
      await auto.agent.stop();
      await world.ok('deployment', 'delete', `auto-${i}`);
      log(`  pair ${i + 1}/${pairs}: automatic ${autoMs.at(-1)!.toFixed(0)} ms (${afterEnrollMs.at(-1)!.toFixed(0)} ms after the grant), by hand ${handMs.at(-1)!.toFixed(0)} ms`);
    }
  } finally {
    events.close();
    await world.close();
  }
  return [
    {
      key: 'power-on',
      title: 'new device: power-on → workload running, a matching deployment exists (image on disk)',
      value: { summary: summarize(autoMs), unit: 'ms', digits: 0 },
      baseline: { title: 'by hand: power-on → enrolled and online, then `tsunagu-fleet deploy DEVICE` typed at once', value: { summary: summarize(handMs), unit: 'ms', digits: 0 } },
      judged: { label: 'ratio', value: { summary: summarize(autoMs.map((a, i) => a / handMs[i]!)), unit: '×', digits: 2 } },
      note: `${pairs} pairs, alternating, each device new (its own key pairs and enrollment), in a fleet of the bench's own made as an operator makes it (\`init\` with the embedded broker, \`bootstrap\`, the shipped \`serve\`); from the agent's spawn with the bootstrap file only (enrollment start-up jitter 0, as configured for a bench) to the engine's start event of its one service. Automatic: \`deployment create … --selector os=linux\` made before the power-on, nothing typed after. By hand: no deployment; \`tsunagu-fleet deploy DEVICE compose.yaml\` typed the instant the agent is online, with no human delay counted, so this baseline is the least doing it by hand can take. The image is on the engine's disk in both (no pull).`,
    },
    {
      key: 'power-on-after-grant',
      title: '… of which after the enrollment grant',
      value: { summary: summarize(afterEnrollMs), unit: 'ms', digits: 0 },
      target: { op: '<=', limit: 5000 },
      note: 'From the agent\'s own log time of its grant to the start event: the target is 5 s after enrollment plus the pull (none here).',
    },
  ];
}
