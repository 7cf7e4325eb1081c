import { isTsunaguError } from '../protocol/errors.js';
import { hintFor } from './error-hints.js';
import { buildFleetProgram } from './fleet-program.js';
import { printable } from './terminal-text.js';

buildFleetProgram().parseAsync(process.argv).catch(async (err: unknown) => {
  // Loaded on failure only: most verbs never log.
  const { createLogger } = await import('../common/logger.js');
  const logger = createLogger({ name: 'tsunagu-fleet', fd: 2 });
  const hint = err instanceof Error ? hintFor(err) : undefined;
  if (isTsunaguError(err)) {
    // A message may quote a device (a refusal, a failed command): shown, never obeyed as escapes.
    process.stderr.write(`tsunagu-fleet: ${err.code}: ${printable(err.message)}\n`);
  } else {
    logger.error({ err }, 'failed');
  }
  if (hint !== undefined) process.stderr.write(`hint: ${hint}\n`);
  process.exit(isTsunaguError(err) && err.code === 'CONFIG' ? 78 : 1);
});
