import { readFileSync } from 'node:fs';
import { TsunaguError } from '../../protocol/errors.js';
import { prepareDeployment, type PreparedDeployment } from './compose-document.js';
import { parseEnvFile } from './env-file.js';
import { parseRegistryAuth, registryAuthFromEnv } from './secrets.js';

/** What an operator names on the command line for one document: `--env-file`, `--registry-auth`. */
export interface DeploymentFileOptions {
  envFile?: string;
  registryAuth?: string[];
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new TsunaguError('CONFIG', `cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

/**
 * The compose file with its env file and registry credentials (from
 * `--registry-auth`, else TSUNAGU_REGISTRY_AUTH), read and prepared: parsed,
 * validated, secrets collected. `deploy` and `deployment create|update` take
 * their documents the same way.
 */
export function prepareDeploymentFiles(composePath: string, o: DeploymentFileOptions): PreparedDeployment {
  const envFile = o.envFile === undefined ? {} : parseEnvFile(readText(o.envFile, 'env file'), o.envFile);
  const authEntries = o.registryAuth !== undefined && o.registryAuth.length > 0 ? o.registryAuth : registryAuthFromEnv(process.env.TSUNAGU_REGISTRY_AUTH);
  return prepareDeployment(readText(composePath, 'compose file'), { envFile, registries: parseRegistryAuth(authEntries) });
}
