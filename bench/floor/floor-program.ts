/**
 * The floor under the agent's resident memory: the four packages the agent
 * must use (mqtt, dockerode, systeminformation, tweetnacl) doing the I/O no
 * device agent can do without, and nothing else — no schemas, no config, no
 * logging, no planner, no state. The bench bundles it exactly as the agent
 * is bundled (scripts/bundle.mjs, the same stubs) and starts it with the
 * agent's node flags, so that its resident memory is what the required
 * packages cost by themselves on this node.
 *
 * What it does, each part as the agent does it:
 * - mqtt: one MQTT 5 connection with the agent's client options (writeCache
 *   off), a subscription, and a QoS 1 request every 10 s that the broker
 *   answers (the dynamic-security plugin's getDefaultACLAccess, as the
 *   broker's admin: the only topics a client without a device role may use);
 * - engine: dockerode on the engine's unix socket: the device's containers
 *   listed and inspected once, then the engine's event stream followed;
 * - crypto: node:crypto's Ed25519 verifying each message that arrives (and an
 *   RFC 8032 vector at start), tweetnacl loaded beside it as the agent loads it;
 * - facts: the static facts read once with systeminformation in a child
 *   process, as the agent reads them (agent/resources/static-facts-child.ts).
 *
 * Usage: node floor.js PARTS CONFIG_JSON, PARTS a comma list of the above
 * (or `facts-child`, the child's own mode).
 */
import { spawn } from 'node:child_process';

interface FloorConfig {
  brokerUrl: string;
  username: string;
  password: string;
  socketPath: string;
  /** Label filter (key=value) selecting the device's containers. */
  label: string;
}

// RFC 8032 §7.1, test 1 (the empty message).
const VECTOR = {
  publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  signature: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
};
const SPKI_PREFIX = '302a300506032b6570032100';
const REQUEST_EVERY_MS = 10_000;

async function readFactsOnce(): Promise<void> {
  const { default: si } = await import('systeminformation');
  const facts = [await si.system(), await si.osInfo(), await si.cpu(), await si.mem(), await si.blockDevices(), await si.graphics()];
  process.stdout.write(`${JSON.stringify(facts).length}\n`);
}

async function startCrypto(): Promise<(message: Buffer) => boolean> {
  const [{ createPublicKey, verify }, nacl] = await Promise.all([import('node:crypto'), import('tweetnacl')]);
  const key = createPublicKey({ key: Buffer.from(SPKI_PREFIX + VECTOR.publicKey, 'hex'), format: 'der', type: 'spki' });
  const signature = Buffer.from(VECTOR.signature, 'hex');
  if (!verify(null, Buffer.alloc(0), key, signature)) throw new Error('the RFC 8032 vector does not verify');
  if (typeof nacl.default.sign.detached.verify !== 'function') throw new Error('tweetnacl did not load');
  return (message) => verify(null, message, key, signature);
}

async function startMqtt(config: FloorConfig, onMessage: (payload: Buffer) => void): Promise<void> {
  const { connect } = await import('mqtt');
  const client = connect(config.brokerUrl, {
    username: config.username, password: config.password, clientId: `floor-${process.pid}`,
    protocolVersion: 5, keepalive: 30, connectTimeout: 15_000, writeCache: false,
  });
  const requests = '$CONTROL/dynamic-security/v1';
  client.on('connect', () => void client.subscribeAsync(`${requests}/response`, { qos: 1 }));
  client.on('message', (_topic, payload) => onMessage(payload));
  client.on('error', (err) => process.stderr.write(`mqtt: ${err.message}\n`));
  setInterval(() => {
    client.publish(requests, JSON.stringify({ commands: [{ command: 'getDefaultACLAccess' }] }), { qos: 1 });
  }, REQUEST_EVERY_MS);
}

async function startEngine(config: FloorConfig): Promise<void> {
  const { default: Docker } = await import('dockerode');
  const docker = new Docker({ socketPath: config.socketPath });
  const filters = { label: [config.label] };
  const containers = await docker.listContainers({ all: true, filters });
  for (const c of containers) await docker.getContainer(c.Id).inspect();
  const events = await docker.getEvents({ filters: { ...filters, type: ['container'] } });
  events.on('data', () => undefined);
}

function readFactsInChild(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'facts-child'], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`facts child exited ${code}`))));
  });
}

async function main(): Promise<void> {
  const parts = new Set((process.argv[2] ?? '').split(',').filter((p) => p !== ''));
  if (parts.has('facts-child')) return readFactsOnce();
  const config = JSON.parse(process.argv[3] ?? '{}') as FloorConfig;
  const verifyOne = parts.has('crypto') ? await startCrypto() : undefined;
  if (parts.has('mqtt')) await startMqtt(config, (payload) => verifyOne?.(payload));
  if (parts.has('engine')) await startEngine(config);
  if (parts.has('facts')) await readFactsInChild();
  process.stdout.write('floor ready\n');
  // Keeps the process alive when no part holds a handle (crypto alone).
  setInterval(() => undefined, 1 << 30);
}

main().catch((err: unknown) => {
  process.stderr.write(`floor: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
