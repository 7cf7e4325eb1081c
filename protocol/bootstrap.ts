import * as z from 'zod/mini';

/**
 * The first-boot file baked into a device image. One file serves a whole
 * batch: it holds nothing specific to one device. It does hold the shared
 * bootstrap credential, which the broker confines to the enrollment topics.
 */
export const BootstrapFileSchema = z.strictObject({
  v: z.literal(1),
  fleetId: z.string().check(z.regex(/^[a-z0-9][a-z0-9-]{0,62}$/)),
  broker: z.strictObject({
    url: z.string().check(z.regex(/^(mqtts?|wss?|tcp|ssl):\/\//)),
    /** PEM of the CA that signed the broker's certificate, for TLS. */
    ca: z.optional(z.string().check(z.maxLength(64 * 1024))),
    username: z.string().check(z.minLength(1), z.maxLength(128)),
    password: z.string().check(z.minLength(1), z.maxLength(256)),
    /** 3.1.1 for brokers without MQTT 5 (the embedded one). */
    protocolVersion: z._default(z.union([z.literal(4), z.literal(5)]), 5),
  }),
  fleetKeys: z.strictObject({
    signPublicKey: z.string(),
    boxPublicKey: z.string(),
  }),
  claim: z._default(z.strictObject({
    /** A batch claim token; sealed to the fleet before it leaves the device. */
    token: z.optional(z.string().check(z.maxLength(256))),
  }), {}),
});

export type BootstrapFile = z.infer<typeof BootstrapFileSchema>;
