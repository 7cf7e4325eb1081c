import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { silentLogger } from '../../common/logger.js';
import { MIN_PACKET_LIMIT_BYTES } from '../../protocol/packet-size.js';
import { deviceTopic } from '../../protocol/topics.js';
import { AccountStore } from '../../provisioning/embedded/account-store.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../provisioning/embedded/embedded-broker.js';

// The embedded broker's configured limit (`broker.maxPacketBytes`), on real sockets: a packet at
// the limit is delivered whole, one just over it closes the sender's connection before delivery,
// and the subscriber, on its own connection, goes on undisturbed.
let dir: string;
let broker: EmbeddedBroker;
const LIMIT = MIN_PACKET_LIMIT_BYTES;
const topic = deviceTopic('d-0123abcd', 'cmd');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsunagu-embedded-limit-'));
  const store = AccountStore.open(join(dir, 'broker-accounts.json'));
  await store.put('tsunagu-fleet-t', 'fleet', 'fleet-password-0123456789');
  broker = await startEmbeddedBroker({ store, host: '127.0.0.1', port: 0, logger: silentLogger(), maxPacketBytes: LIMIT });
});

after(async () => {
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
});

function connect(clientId: string): Promise<MqttClient> {
  return mqtt.connectAsync(broker.url, { username: 'tsunagu-fleet-t', password: 'fleet-password-0123456789', protocolVersion: 4, clientId, clean: true, reconnectPeriod: 0 });
}

/** The payload that makes a QoS 1 PUBLISH on `topic` exactly `packetBytes` long (a 3-byte Remaining Length). */
function payloadFor(packetBytes: number): Buffer {
  return Buffer.alloc(packetBytes - 1 - 3 - (2 + topic.length) - 2, 0x20);
}

test('a packet of exactly the configured limit passes; one byte more closes the sender, and is never delivered', { timeout: 30_000 }, async () => {
  const subscriber = await connect('limit-sub');
  const publisher = await connect('limit-pub');
  try {
    const received: number[] = [];
    const small = Buffer.from('after');
    const smallArrived = new Promise<void>((resolve) => subscriber.on('message', (_t, payload) => {
      received.push(payload.length);
      if (payload.equals(small)) resolve();
    }));
    await subscriber.subscribeAsync(topic, { qos: 1 });

    const atLimit = payloadFor(LIMIT);
    await publisher.publishAsync(topic, atLimit, { qos: 1 });
    const overLimit = payloadFor(LIMIT + 1);
    publisher.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => publisher.once('close', () => resolve()));
    publisher.publish(topic, overLimit, { qos: 1 });
    await closed;
    assert.equal(broker.refusedPackets(), 1);

    // The subscriber's connection stays, and what it receives next is what follows, not the refused packet.
    const other = await connect('limit-pub-2');
    await other.publishAsync(topic, small, { qos: 1 });
    await other.endAsync();
    await smallArrived;
    assert.deepEqual(received, [atLimit.length, small.length]);
    assert.equal(subscriber.connected, true);
  } finally {
    publisher.end(true);
    await subscriber.endAsync();
  }
});
