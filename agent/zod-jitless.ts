import { config } from 'zod/v4/core';

// Classic zod compiles each object schema into generated code (new Function)
// on its first parse: ~30 functions, their source and bytecode kept for the
// agent's life, to speed up parsing large batches. The agent parses a few
// small messages a minute; interpreted checks cost it nothing measurable.
// The agent's own schemas are zod/mini's, whose objects never generate code
// (and lint keeps classic `zod` out of agent/, protocol/, common/): this
// keeps it so for any classic schema that would still come in.
//
// A module of its own, imported first by agent/main.ts: whether a schema
// may use generated code is decided when the schema is built, and schemas
// are built when their modules load, before main.ts's own code runs.
config({ jitless: true });
