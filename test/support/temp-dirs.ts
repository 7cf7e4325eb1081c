import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'node:test';

/** A maker of temporary directories (`<prefix>…`), each removed after the test that made it. Call at the top of a test file. */
export function tempDirs(prefix: string): () => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
}

/** `use` a file named `name` holding `text`, in a temporary directory removed afterwards. */
export function withTempFile<T>(name: string, text: string, use: (path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'tsunagu-file-'));
  try {
    writeFileSync(join(dir, name), text);
    return use(join(dir, name));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A test body given a temporary directory (`<prefix>…`), removed when it ends. */
export function withDir(prefix: string, fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}
