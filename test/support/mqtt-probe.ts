import mqtt, { type MqttClient } from 'mqtt';

export async function connectAs(url: string, username: string, password: string, clientId?: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, {
    username, password, protocolVersion: 5, clean: true, reconnectPeriod: 0, connectTimeout: 5000,
    clientId: clientId ?? `probe-${Math.random().toString(36).slice(2, 10)}`,
  });
}

/** Subscribe and report the granted QoS (≥ 128 means refused by the broker). */
export async function subscribeGranted(client: MqttClient, filter: string): Promise<number> {
  try {
    const granted = await client.subscribeAsync(filter, { qos: 1 });
    return granted[0]?.qos ?? -1;
  } catch (err) {
    // MQTT.js turns a SUBACK reason ≥ 0x80 into an error under MQTT 5.
    if (/not authorized/i.test((err as Error).message)) return 0x87;
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

/** Publish and swallow a broker refusal (MQTT 5 PUBACK reason 0x87): the observer decides. */
export async function tryPublish(client: MqttClient, topic: string, payload: string): Promise<void> {
  await client.publishAsync(topic, payload, { qos: 1 }).catch(() => undefined);
}
