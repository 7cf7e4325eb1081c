import mqtt, { type MqttClient } from 'mqtt';

export async function connectAs(url: string, username: string, password: string, clientId?: string, protocolVersion: 4 | 5 = 5): Promise<MqttClient> {
  return mqtt.connectAsync(url, {
    username, password, protocolVersion, clean: true, reconnectPeriod: 0, connectTimeout: 5000,
    clientId: clientId ?? `probe-${Math.random().toString(36).slice(2, 10)}`,
  });
}

/** Subscribe and report the granted QoS (≥ 128 means refused by the broker). */
export async function subscribeGranted(client: MqttClient, filter: string): Promise<number> {
  try {
    const granted = await client.subscribeAsync(filter, { qos: 1 });
    return granted[0]?.qos ?? -1;
  } catch (err) {
    // MQTT.js turns a SUBACK reason ≥ 0x80 into an error: 0x87 under MQTT 5, 0x80 ("Unspecified error") under 3.1.1.
    if (/not authorized/i.test((err as Error).message)) return 0x87;
    if (/unspecified error/i.test((err as Error).message)) return 0x80;
    throw err;
  }
}

/** Collect messages a client receives on topics matching `pattern` during `ms`. */
export function collect(client: MqttClient, ms: number): Promise<{ topic: string; payload: string }[]> {
  const got: { topic: string; payload: string }[] = [];
  const on = (topic: string, payload: Buffer): void => {
    got.push({ topic, payload: payload.toString() });
  };
  client.on('message', on);
  return new Promise((resolve) => setTimeout(() => {
    client.removeListener('message', on);
    resolve(got);
  }, ms));
}

/**
 * Publish and swallow a broker refusal: a PUBACK reason 0x87 under MQTT 5, or
 * the closed connection with which Aedes answers under 3.1.1 (the pending
 * QoS 1 publish of MQTT.js would then wait forever). The observer decides.
 */
export async function tryPublish(client: MqttClient, topic: string, payload: string): Promise<void> {
  let onClose: (() => void) | undefined;
  const closed = new Promise<void>((resolve) => {
    onClose = resolve;
    client.once('close', resolve);
  });
  await Promise.race([client.publishAsync(topic, payload, { qos: 1 }).catch(() => undefined), closed]);
  client.removeListener('close', onClose!);
}

/**
 * Collect what a client receives until a message matches `last` (or `ms`
 * pass): publish the forbidden messages first and a permitted marker last,
 * and the marker's arrival proves the broker has dealt with the others.
 */
export function collectUntil(client: MqttClient, last: (m: { topic: string; payload: string }) => boolean, ms: number): Promise<{ topic: string; payload: string }[]> {
  const got: { topic: string; payload: string }[] = [];
  return new Promise((resolve) => {
    const finish = (): void => {
      clearTimeout(timer);
      client.removeListener('message', on);
      resolve(got);
    };
    const on = (topic: string, payload: Buffer): void => {
      const m = { topic, payload: payload.toString() };
      got.push(m);
      if (last(m)) finish();
    };
    const timer = setTimeout(finish, ms);
    client.on('message', on);
  });
}

/**
 * Resolve once the broker has dealt with what reached it before this call from any client (a
 * DISCONNECT, a closed socket and the will that would follow). `client` (a fleet account)
 * publishes a marker to itself twice in turn: the broker reads its sockets in one loop, so what
 * came earlier is handled at the latest in the round that reads the first marker, and whatever
 * that sends `client` is on its way before the second marker comes back.
 */
export async function brokerCaughtUp(client: MqttClient): Promise<void> {
  const topic = `tsunagu/test-marker/${Math.random().toString(36).slice(2)}`;
  await client.subscribeAsync(topic, { qos: 1 });
  for (const marker of ['first', 'second']) {
    const back = collectUntil(client, (m) => m.topic === topic && m.payload === marker, 10_000);
    await client.publishAsync(topic, marker, { qos: 1 });
    if ((await back).at(-1)?.payload !== marker) throw new Error(`the ${marker} marker did not come back`);
  }
  await client.unsubscribeAsync(topic);
}

/**
 * What the broker holds retained under `tsunagu/devices/{deviceId}/#`, as seen
 * by `client` (a fleet account). Both brokers may send retained messages after
 * the SUBACK (Aedes streams them), so a live marker could overtake them; but
 * both send the retained messages of one SUBSCRIBE in the order of its
 * filters. So: a retained marker on a topic of its own, subscribed to last in
 * the same SUBSCRIBE, closes the list.
 */
export async function retainedUnderDevice(client: MqttClient, deviceId: string): Promise<{ topic: string; payload: string }[]> {
  const filter = `tsunagu/devices/${deviceId}/#`;
  const markerTopic = `tsunagu/test-marker/${Math.random().toString(36).slice(2)}`;
  const marker = `marker-${Math.random()}`;
  await client.publishAsync(markerTopic, marker, { qos: 1, retain: true });
  // Listening first: retained messages may arrive in the same read as the SUBACK.
  const got = collectUntil(client, (m) => m.topic === markerTopic, 10_000);
  await client.subscribeAsync([filter, markerTopic], { qos: 1 });
  const seen = await got;
  await client.unsubscribeAsync([filter, markerTopic]);
  await client.publishAsync(markerTopic, Buffer.alloc(0), { qos: 1, retain: true });
  if (seen.at(-1)?.payload !== marker) throw new Error(`the marker did not come back: ${JSON.stringify(seen)}`);
  return seen.slice(0, -1);
}
