/**
 * Keys under this prefix are the agent's: a desired state that sets one on a
 * service is refused (compose-schema.ts), so no container can pass for one the
 * agent created, nor claim another service, version or scope. The labels the
 * agent itself sets are in agent/supervisor/labels.ts, all under this prefix.
 */
export const RESERVED_LABEL_PREFIX = 'io.tsunagu.';
