import * as z from 'zod/mini';
import { ComposeDocumentSchema, ComposeServiceSchema } from '../protocol/compose/compose-schema.js';
import { BootstrapFileSchema } from '../protocol/bootstrap.js';
import { COMMAND_TYPE, CommandSchema, DESIRED_TYPE, REPLY_TYPE, ReplyDataSchema } from '../protocol/commands.js';
import { DesiredDataSchema, RegistryCredentialsSchema, ReportedStateSchema } from '../protocol/desired.js';
import {
  DeviceClaimSchema, ENROLL_REQUEST_TYPE, ENROLL_RESPONSE_TYPE, EnrollGrantSchema, EnrollRequestDataSchema, EnrollResponseDataSchema,
} from '../protocol/enrollment.js';
import { EnvelopeSchema, SignedPayloadSchema } from '../protocol/envelope.js';
import { KNOWN_EVENT_SCHEMAS } from '../protocol/events/device-events.js';
import { DeviceEventSchema } from '../protocol/events/event-frame.js';
import { KeyFileSchema } from '../protocol/keys.js';
import { InventoryReportSchema, LabelsSchema, MetricsReportSchema } from '../protocol/reports.js';
import { DeviceStatusSchema } from '../protocol/status.js';
import { DeviceListingSchema } from '../provisioning/device-listing.js';
import { FleetConfigSchema } from '../provisioning/fleet-dir.js';

/**
 * The JSON Schema of every message on the wire and of every file a third
 * party reads, generated from the zod schemas the code validates with.
 * `npm run docs:schemas` writes them to docs/schemas/; test/unit/json-schemas.test.ts
 * renders them again and fails when the committed files differ.
 *
 * A signed message has two layers: the envelope (envelope.json), whose
 * `body` is the base64 of the payload bytes; and the payload, one schema
 * per message type below (`typ` fixed, `data` the content the receiver checks).
 */

type AnySchema = z.core.$ZodType;

export interface WireDocument {
  /** File name under docs/schemas/. */
  file: string;
  title: string;
  /** Where it travels: a topic, `sealed in …`, or a file. */
  where: string;
  direction: string;
  description: string;
  schema: AnySchema;
}

const count = z.int().check(z.nonnegative());

/** The payload of a signed message of one type: the generic payload with `typ` fixed and `data` typed. */
function payloadOf(typ: string, data: AnySchema, extra: Record<string, AnySchema> = {}): AnySchema {
  return z.extend(SignedPayloadSchema, { typ: z.literal(typ), data, ...extra });
}

const SIGNED = 'a signed envelope (envelope.json) whose body decodes to this payload';

export const WIRE_DOCUMENTS: readonly WireDocument[] = [
  {
    file: 'envelope.json', title: 'Signed envelope', where: 'tsunagu/enroll/request, tsunagu/enroll/response/{requestId}, tsunagu/devices/{deviceId}/cmd, …/desired, …/reply',
    direction: 'both', description: 'The outer layer of every signed message (protocol.md §4.1). body is the base64 of the payload bytes; sig the base64 of the Ed25519 signature of exactly those bytes.',
    schema: EnvelopeSchema,
  },
  {
    file: 'signed-payload.json', title: 'Signed payload (any type)', where: 'inside an envelope', direction: 'both',
    description: 'The payload every signed message carries (protocol.md §4.3); data depends on typ: see the *.payload.json files.',
    schema: SignedPayloadSchema,
  },
  {
    file: 'enroll-request.payload.json', title: 'Enrollment request', where: 'tsunagu/enroll/request', direction: 'device → fleet',
    description: `Payload of ${SIGNED}, signed by the device key (protocol.md §6.2). data.sealed seals enroll-claim.json to the fleet box key.`,
    schema: payloadOf(ENROLL_REQUEST_TYPE, EnrollRequestDataSchema),
  },
  {
    file: 'enroll-claim.json', title: 'Enrollment claim', where: 'sealed in an enrollment request (data.sealed)', direction: 'device → fleet',
    description: 'What the device tells the fleet about itself, sealed to the fleet box key (protocol.md §6.2).',
    schema: DeviceClaimSchema,
  },
  {
    file: 'enroll-response.payload.json', title: 'Enrollment response', where: 'tsunagu/enroll/response/{requestId}', direction: 'fleet → device',
    description: `Payload of ${SIGNED}, signed by the fleet key, to = the request id (protocol.md §6.4): a sealed grant, or a refusal with the fleet time.`,
    schema: payloadOf(ENROLL_RESPONSE_TYPE, EnrollResponseDataSchema),
  },
  {
    file: 'enroll-grant.json', title: 'Enrollment grant', where: 'sealed in an enrollment response (data.sealed)', direction: 'fleet → device',
    description: 'The per-device broker credential, sealed to the device box key (protocol.md §6.4).',
    schema: EnrollGrantSchema,
  },
  {
    file: 'cmd.payload.json', title: 'Command', where: 'tsunagu/devices/{deviceId}/cmd', direction: 'fleet → device',
    description: `Payload of ${SIGNED}, signed by the fleet key (protocol.md §9.2). data is one of the commands, told apart by name; ctr is required (protocol.md §9.1). rotate-credentials args.sealed seals the new password (UTF-8, 16–256 characters) to the device box key.`,
    // The device refuses a fleet message without ctr (agent/commands/replay-guard.ts).
    schema: payloadOf(COMMAND_TYPE, CommandSchema, { ctr: count }),
  },
  {
    file: 'reply.payload.json', title: 'Reply', where: 'tsunagu/devices/{deviceId}/reply', direction: 'device → fleet',
    description: `Payload of ${SIGNED}, signed by the device key, to = the fleet id (protocol.md §9.3). data.re is the id of the command answered.`,
    schema: payloadOf(REPLY_TYPE, ReplyDataSchema),
  },
  {
    file: 'desired.payload.json', title: 'Desired state', where: 'tsunagu/devices/{deviceId}/desired (retained)', direction: 'fleet → device',
    description: `Payload of ${SIGNED}, signed by the fleet key (protocol.md §9.7). data.compose is the Compose subset of protocol.md §9.7 (desired-compose.json); each data.sealed.environment value seals a UTF-8 string, data.sealed.registries seals desired-registries.json, both to the device box key.`,
    schema: payloadOf(DESIRED_TYPE, DesiredDataSchema),
  },
  {
    file: 'desired-compose.json', title: 'Compose subset', where: 'data.compose of a desired state', direction: 'fleet → device',
    description: 'The structure of the Compose-subset document (protocol.md §9.7, protocol/compose/compose-schema.ts): a field not listed is refused as UNSUPPORTED; x-* fields other than x-tsunagu are dropped. The device checks more than the structure (service and volume names, references between services, values such as durations, byte sizes, ports and volume specs, its security policy): valid here does not mean accepted.',
    schema: ComposeDocumentSchema,
  },
  {
    file: 'desired-registries.json', title: 'Registry credentials', where: 'sealed in a desired state (data.sealed.registries)', direction: 'fleet → device',
    description: 'Credentials per registry host (protocol.md §9.7).',
    schema: RegistryCredentialsSchema,
  },
  {
    file: 'status.json', title: 'Status and last will', where: 'tsunagu/devices/{deviceId}/status (retained)', direction: 'device → fleet',
    description: 'Plain JSON, not signed (protocol.md §7); at most 4096 bytes, 4 levels deep. An empty payload is a cleared retained message.',
    schema: DeviceStatusSchema,
  },
  {
    file: 'inventory.json', title: 'Inventory', where: 'tsunagu/devices/{deviceId}/inventory (retained)', direction: 'device → fleet',
    description: 'Plain JSON, not signed (protocol.md §9.5).',
    schema: InventoryReportSchema,
  },
  {
    file: 'metrics.json', title: 'Metrics', where: 'tsunagu/devices/{deviceId}/metrics (retained)', direction: 'device → fleet',
    description: 'Plain JSON, not signed (protocol.md §9.5, §9.10).',
    schema: MetricsReportSchema,
  },
  {
    file: 'state.json', title: 'Reported state', where: 'tsunagu/devices/{deviceId}/state (retained)', direction: 'device → fleet',
    description: 'Plain JSON, not signed (protocol.md §9.8). A receiver must accept service state values it does not know.',
    schema: ReportedStateSchema,
  },
  {
    file: 'event.json', title: 'Event (any type)', where: 'tsunagu/devices/{deviceId}/events', direction: 'device → fleet',
    description: 'Plain JSON, not signed, not retained (protocol.md §9.6). The members besides v, at, type and traceparent depend on type: see the event.*.json files; a receiver accepts types and members it does not know.',
    schema: DeviceEventSchema,
  },
  {
    file: 'bootstrap-file.json', title: 'Bootstrap file', where: 'file on the device (tsunagu.json on the boot partition, /etc/tsunagu/bootstrap.json)', direction: 'fleet → device',
    description: 'The first-boot file of a batch of devices (protocol.md §6.1); written by tsunagu-fleet bootstrap.',
    schema: BootstrapFileSchema,
  },
  {
    file: 'fleet-config.json', title: 'Fleet settings (fleet.json)', where: 'file in the fleet directory', direction: 'fleet only',
    description: 'Written by tsunagu-fleet init (provisioning.md, "The fleet directory"). Holds credentials: mode 0600.',
    schema: FleetConfigSchema,
  },
  {
    file: 'key-file.json', title: 'Fleet key file (keys.json)', where: 'file in the fleet directory', direction: 'fleet only',
    description: 'The fleet key pairs, base64 (provisioning.md, "The fleet directory"). signSecretKey is the 64-byte seed ‖ public key form. Mode 0600.',
    schema: KeyFileSchema,
  },
  {
    file: 'devices-listing.json', title: 'tsunagu-fleet devices --json [--keys]', where: 'standard output of the command', direction: 'fleet only',
    description: 'One object per device, in the registry order (provisioning.md, "tsunagu-fleet devices"). The key members are present only with --keys.',
    schema: DeviceListingSchema,
  },
];

/** One document per event type this protocol knows: event.<type>.json. */
export const EVENT_DOCUMENTS: readonly WireDocument[] = KNOWN_EVENT_SCHEMAS.map((schema) => {
  const type = schema.shape.type.def.values[0];
  return {
    file: `event.${type}.json`, title: `Event ${type}`, where: 'tsunagu/devices/{deviceId}/events', direction: 'device → fleet',
    description: `An event of type ${type} (protocol.md §9.6): the frame of event.json with type fixed, then the members of this type. A receiver accepts members it does not know.`,
    schema,
  };
});

/**
 * JSON Schema has no word for a refinement; the few the schemas use are
 * written here by hand, so that none is silently left out.
 */
function withRefinements(ctx: { zodSchema: z.core.$ZodType; jsonSchema: Record<string, unknown> }): void {
  if (ctx.zodSchema === LabelsSchema) ctx.jsonSchema.maxProperties = 64;
  else if ((ctx.zodSchema._zod.def.checks ?? []).some((c) => c._zod.def.check === 'custom')) {
    throw new Error('a schema on the wire has a refinement this generator does not translate: add it to withRefinements');
  }
  // Compose extension fields: the agent drops every x-* field but x-tsunagu before it checks the rest.
  if (ctx.zodSchema === ComposeDocumentSchema || ctx.zodSchema === ComposeServiceSchema) ctx.jsonSchema.patternProperties = { '^x-': {} };
}

/** The JSON Schema document of one entry, as the text of its file. */
export function renderWireSchema(doc: WireDocument): string {
  // `input`: what a sender may write (a member with a default may be left out).
  // zod's generator reads classic schemas (the fleet's files) as well as zod/mini ones.
  const generated = z.toJSONSchema(doc.schema, { io: 'input', override: withRefinements }) as Record<string, unknown>;
  const { $schema, ...rest } = generated;
  return `${JSON.stringify({ $schema, title: doc.title, description: doc.description, ...rest }, null, 2)}\n`;
}

/** docs/schemas/README.md: each document, where it travels, and its file. */
export function renderSchemaIndex(): string {
  const rows = WIRE_DOCUMENTS.map((d) => `| ${d.title} | ${d.where} | ${d.direction} | [${d.file}](${d.file}) |`);
  const commands = CommandSchema.def.options.map((o) => `\`${o.shape.name.def.values[0]!}\``).join(', ');
  const events = EVENT_DOCUMENTS.map((d) => `[\`${d.file.slice('event.'.length, -'.json'.length)}\`](${d.file})`).join(', ');
  return `# JSON Schemas of the wire messages

Generated by \`npm run docs:schemas\` (\`scripts/json-schemas.ts\`) from the zod schemas the code
validates with; \`test/unit/json-schemas.test.ts\` fails when a file here differs from what the code
gives, and checks the test vectors of \`protocol/vectors/\` against them. Do not edit by hand.

JSON Schema draft 2020-12, in the *input* sense: what a sender may write (a member with a default
may be left out). The byte and depth limits of [protocol.md §8](../protocol.md#8-size-and-depth-limits),
the canonical base64 of §4.2 and the rules that need the receiver's state (§6.3, §9.1) are not
expressible here: a message valid against its schema may still be refused for them.

A signed message is an envelope (\`envelope.json\`) whose \`body\` is the base64 of the payload
bytes; the payload is checked against the \`*.payload.json\` schema of its topic. Sealed contents
(claim, grant, registry credentials) are JSON inside a sealed box (§5); the other sealed values
(a secret environment value, the password of \`rotate-credentials\`) are UTF-8 strings.

| message | topic or place | direction | schema |
|---|---|---|---|
${rows.join('\n')}

Commands in \`cmd.payload.json\` (one \`oneOf\` branch each, told apart by \`data.name\`): ${commands}.

Events on \`events\`, one schema per type (\`event.<type>.json\`; \`event.json\` is the frame every
type has, and what a receiver checks of a type it does not know): ${events}.
`;
}

/** Every file of docs/schemas/, by name. */
export function renderSchemaFiles(): Record<string, string> {
  const files: Record<string, string> = { 'README.md': renderSchemaIndex() };
  for (const doc of [...WIRE_DOCUMENTS, ...EVENT_DOCUMENTS]) files[doc.file] = renderWireSchema(doc);
  return files;
}
