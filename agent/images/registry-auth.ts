import type { RegistryCredentials } from '../../protocol/desired.js';
import type { RegistryAuth } from '../supervisor/container-runtime.js';
import { registryOf } from './image-reference.js';

/** The supervisor's `registryAuth` hook over a set of credentials. */
export function registryAuthFor(registries: RegistryCredentials, image: string): RegistryAuth | undefined {
  const host = registryOf(image);
  const creds = registries[host];
  return creds === undefined ? undefined : { username: creds.username, password: creds.password, serveraddress: host };
}
