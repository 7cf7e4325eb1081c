import { readFileSync } from 'node:fs';

/**
 * The release version of both programs. Written once, in package.json: the
 * bundler (scripts/bundle.mjs) replaces this module with the literal, so a
 * shipped binary reads no file for it; run from source (tsx), it is read
 * from package.json here.
 */
export const TSUNAGU_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
