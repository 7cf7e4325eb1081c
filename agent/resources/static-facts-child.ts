import { execFile } from 'node:child_process';
import { TsunaguError } from '../../protocol/errors.js';
import { checkSchema, parseJsonBytes } from '../../protocol/json.js';
import type { StaticFacts } from './probe.js';
import { StaticFactsSchema } from './static-facts-schema.js';

/** How to run the agent's own `static-facts` command: the node binary and its arguments. */
export interface StaticFactsCommand {
  file: string;
  args: string[];
}

// dmidecode or lspci stuck on a broken bus must not hold the answer forever.
const TIMEOUT_MS = 60_000;
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

/**
 * The agent's own command for this process: the same node, the same flags,
 * the same entry file, `static-facts` instead of `run`.
 */
export function ownStaticFactsCommand(): StaticFactsCommand {
  return { file: process.execPath, args: [...process.execArgv, process.argv[1] ?? '', 'static-facts'] };
}

/**
 * Read the static facts in a short-lived child process. systeminformation
 * loaded and run once leaves some 7 MB of resident memory behind in the
 * process that ran it (its module, child-process plumbing, allocator
 * fragmentation); the agent runs for months and needs the facts once per
 * start. The child's answer is checked like any other document.
 */
export function readStaticFactsInChild(command: StaticFactsCommand): Promise<StaticFacts> {
  return new Promise((resolve, reject) => {
    execFile(command.file, command.args, { timeout: TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES, encoding: 'buffer', env: process.env }, (err, stdout, stderr) => {
      if (err !== null) {
        const said = stderr.toString('utf8').trim().split('\n').at(-1) ?? '';
        reject(new TsunaguError('PROBE_FAILED', `static facts: the reading process failed (${err.message.split('\n')[0]}${said === '' ? '' : `: ${said}`})`));
        return;
      }
      try {
        resolve(checkSchema(StaticFactsSchema, parseJsonBytes(stdout), 'static facts'));
      } catch (parseErr) {
        reject(new TsunaguError('PROBE_FAILED', `static facts: the reading process answered ${(parseErr as Error).message}`));
      }
    });
  });
}
