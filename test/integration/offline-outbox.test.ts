import assert from 'node:assert/strict';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { MetricsReportSchema } from '../../protocol/reports.js';
import { AgentProcess } from '../support/agent-process.js';
import type { TestFleet } from '../support/fleet.js';
import { fleetSession } from '../support/fleet-session.js';
import type { TestBroker } from '../support/mosquitto.js';
import { waitFor } from '../support/wait-for.js';
import { closeFleetWorld, startFleetWorld } from '../support/fleet-world.js';

// Reports across a broker outage, with the shipped agent and a real broker:
// buffered on disk while offline, delivered in order on reconnect, and when
// the bound is reached the oldest metrics go and the drop is reported.
let broker: TestBroker;
let tf: TestFleet;
let work: string;
let fleet: Awaited<ReturnType<typeof fleetSession>>;

const config = (outboxBytes: number): string => `
enrollment: { startupJitterMs: 0, backoffBaseMs: 200, backoffCapMs: 2000 }
link: { keepaliveSeconds: 5, backoffBaseMs: 100, backoffCapMs: 500 }
reports: { metricsIntervalMs: 1000, sampleIntervalMs: 1000 }
outbox: { maxBytes: ${outboxBytes} }
`;

async function device(name: string, outboxBytes: number): Promise<{ agent: AgentProcess; deviceId: string; stateDir: string; metrics: number[]; events: Record<string, unknown>[] }> {
  const stateDir = join(work, name);
  const bootstrapPath = join(work, `${name}.json`);
  writeFileSync(bootstrapPath, JSON.stringify(tf.bootstrap));
  const agent = new AgentProcess({ stateDir, bootstrapPath, configYaml: config(outboxBytes), extraArgs: [] });
  const deviceId = await agent.enrolledAndOnline();
  const metrics: number[] = [];
  const events: Record<string, unknown>[] = [];
  await fleet.link.watch(deviceId, ['metrics', 'events'], (r) => {
    const body = JSON.parse(r.payload.toString()) as Record<string, unknown>;
    if (r.kind === 'metrics' && !r.retained) metrics.push(MetricsReportSchema.parse(body).at);
    if (r.kind === 'events') events.push(body);
  });
  return { agent, deviceId, stateDir, metrics, events };
}

before(async () => {
  ({ broker, tf, work } = await startFleetWorld('tsunagu-outbox-'));
  fleet = await fleetSession(tf, broker.url);
});

after(async () => {
  await fleet.close();
  await closeFleetWorld({ broker, tf, work });
});

test('online and idle, the agent writes nothing to its state dir', async () => {
  const d = await device('quiet', 1024 * 1024);
  await waitFor('two metrics reports', () => d.metrics.length >= 2, 10_000);
  const snapshot = (): string => readdirSync(d.stateDir, { recursive: true }).map(String).sort()
    .map((f) => `${f}:${statSync(join(d.stateDir, f)).mtimeMs}`).join('\n');
  const before = snapshot();
  // Not a sleep: the idle window ends when the agent has done its periodic work twice more.
  const reportsBefore = d.metrics.length;
  await waitFor('two more metrics reports', () => d.metrics.length >= reportsBefore + 2, 10_000);
  assert.ok(d.metrics.length >= 4, 'reports kept flowing');
  assert.equal(snapshot(), before);
  await d.agent.stop();
});

test('a broker outage: metrics are buffered, delivered in order, none lost within the bound; beyond it drops are counted', async () => {
  const roomy = await device('roomy', 1024 * 1024);
  const tight = await device('tight', 8 * 1024);
  try {
    await outage(roomy, tight);
  } finally {
    await roomy.agent.stop();
    await tight.agent.stop();
  }
});

async function outage(roomy: Awaited<ReturnType<typeof device>>, tight: Awaited<ReturnType<typeof device>>): Promise<void> {
  await waitFor('a metrics report from each device', () => roomy.metrics.length >= 1 && tight.metrics.length >= 1, 10_000);
  const outageStart = Date.now();
  await broker.stop();
  await new Promise((r) => setTimeout(r, 25_000));
  await broker.start();
  try {
    await waitFor('a recent metrics report from the roomy device', () => roomy.metrics.some((at) => at > Date.now() - 1500), 20_000);
    await waitFor('an outbox-dropped event from the tight device', () => tight.events.some((e) => e.type === 'outbox-dropped'), 20_000);
  } catch (err) {
    const tail = (a: AgentProcess): string => a.lines.slice(-6).map((l) => JSON.stringify(l).slice(0, 200)).join('\n');
    throw new Error(`${(err as Error).message}: roomy ${roomy.metrics.length} metrics, tight events ${JSON.stringify(tight.events).slice(0, 300)}\nroomy:\n${tail(roomy.agent)}\ntight:\n${tail(tight.agent)}`);
  }
  const outageEnd = Date.now();

  // In order, no duplicates, and one report per second of outage (give or take the edges).
  for (let i = 1; i < roomy.metrics.length; i++) assert.ok(roomy.metrics[i]! > roomy.metrics[i - 1]!, 'metrics out of order');
  const during = roomy.metrics.filter((at) => at > outageStart && at < outageEnd - 2000);
  assert.ok(during.length >= 20, `expected ≥ 20 buffered reports, got ${during.length}`);

  // The tight outbox kept the newest and said how many it dropped.
  const dropped = tight.events.find((e) => e.type === 'outbox-dropped') as { dropped: { metrics: number; reply: number; event: number } };
  assert.ok(dropped.dropped.metrics > 0, 'dropped.dropped.metrics > 0');
  assert.equal(dropped.dropped.reply, 0);
  for (let i = 1; i < tight.metrics.length; i++) assert.ok(tight.metrics[i]! > tight.metrics[i - 1]!, 'tight.metrics[i]! > tight.metrics[i - 1]!');
}
