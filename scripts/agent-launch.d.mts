/** See agent-launch.mjs. */
export declare const AGENT_NODE_FLAGS: readonly string[];
export declare const AGENT_ENVIRONMENT: Readonly<Record<string, string>>;
