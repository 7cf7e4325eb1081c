import { spawn } from 'node:child_process';
import type { BenchDevice } from '../bench-device.js';
import type { FigureResult } from '../figure.js';
import { processCpu } from '../proc-usage.js';
import { median, summarize } from '../stats.js';

/** Spawn to exit of `node <flags> -e ''`, the runtime's own start and the floor of any Node agent, with its CPU time. */
function nodeStart(flags: readonly string[], env: Readonly<Record<string, string>>): Promise<{ wallMs: number; cpuMs: number }> {
  return new Promise((resolve, reject) => {
    const cpu0 = processCpu(process.pid).childrenMs;
    const t0 = performance.now();
    const child = spawn(process.execPath, [...flags, '-e', ''], { stdio: 'ignore', env: { ...process.env, ...env } });
    child.on('error', reject);
    // 'close' comes after the child is reaped, so its CPU is in our cutime/cstime.
    child.on('close', () => resolve({ wallMs: performance.now() - t0, cpuMs: processCpu(process.pid).childrenMs - cpu0 }));
  });
}

/**
 * Spawn of the agent bundle, with its identity and desired state on disk
 * (a reboot of an enrolled device running its services), to its
 * `link connecting → online` log line, against `node -e ''`, alternating.
 * The device's agent must be stopped before.
 */
export async function measureColdStart(device: BenchDevice, flags: readonly string[], env: Readonly<Record<string, string>>, runs: number, log: (line: string) => void): Promise<FigureResult> {
  const agentMs: number[] = [];
  const nodeMs: number[] = [];
  const agentCpuMs: number[] = [];
  const nodeCpuMs: number[] = [];
  const loadMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const node = await nodeStart(flags, env);
    nodeMs.push(node.wallMs);
    nodeCpuMs.push(node.cpuMs);
    const spawnedAt = Date.now();
    const t0 = performance.now();
    const agent = device.start();
    await agent.waitForMsg(/→ online/, 30_000);
    agentMs.push(performance.now() - t0);
    agentCpuMs.push(processCpu(device.pid).selfMs);
    // The first log line is written once node is up and the bundle is loaded.
    const first = agent.lines.find((l) => l.msg === 'starting');
    loadMs.push(Date.parse(String(first?.time)) - spawnedAt);
    await device.stop();
    log(`  run ${i + 1}/${runs}: agent ${agentMs.at(-1)!.toFixed(0)} ms, node -e '' ${nodeMs.at(-1)!.toFixed(0)} ms`);
  }
  return {
    key: 'cold-start',
    title: 'cold start of the bundle to online (identity on disk)',
    value: { summary: summarize(agentMs), unit: 'ms', digits: 0 },
    baseline: { title: "`node -e ''` start", value: { summary: summarize(nodeMs), unit: 'ms', digits: 0 } },
    judged: { label: 'above baseline', value: { summary: summarize(agentMs.map((a, i) => (a - nodeMs[i]!) / 1000)), unit: 's', digits: 3 } },
    target: { op: '<=', limit: 0.5 },
    note: `${runs} runs, alternating, both launched the same way (flags and environment). Agent: spawn to the \`link connecting → online\` log line as this process receives it, on a device with its identity, desired state and running containers on disk; the broker on loopback. Of the agent's time, spawn to its first log line (node start and bundle load): ${median(loadMs).toFixed(0)} ms. CPU time, which a loaded machine does not stretch: agent to online ${median(agentCpuMs).toFixed(0)} ms, \`node -e ''\` ${median(nodeCpuMs).toFixed(0)} ms (medians; 10 ms ticks).`,
  };
}
