import * as z from 'zod';

/**
 * The first-boot file baked into a device image. One file serves a whole
 * batch: it holds nothing specific to one device. It does hold the shared
 * bootstrap credential, which the broker confines to the enrollment topics.
 */
export const BootstrapFileSchema = z.object({
  v: z.literal(1),
  fleetId: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  broker: z.object({
    url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\//),
    /** PEM of the CA that signed the broker's certificate, for TLS. */
    ca: z.string().max(64 * 1024).optional(),
    username: z.string().min(1).max(128),
    password: z.string().min(1).max(256),
    /** 3.1.1 for brokers without MQTT 5 (the embedded one). */
    protocolVersion: z.union([z.literal(4), z.literal(5)]).default(5),
  }).strict(),
  fleetKeys: z.object({
    signPublicKey: z.string(),
    boxPublicKey: z.string(),
  }).strict(),
  claim: z.object({
    /** A batch claim token; sealed to the fleet before it leaves the device. */
    token: z.string().max(256).optional(),
  }).strict().default({}),
}).strict();

export type BootstrapFile = z.infer<typeof BootstrapFileSchema>;
