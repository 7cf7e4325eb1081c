import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../common/atomic-file.js';

/**
 * docs/benchmarks.md is half written by hand (what the figures mean, what
 * was done about them) and half by `npm run bench`: each generated part sits
 * between `<!-- bench:NAME:begin -->` and `<!-- bench:NAME:end -->`, and a run
 * replaces only the parts it measured. The default run leaves the 30-minute
 * section of the last `--long` run as it is.
 */
export function replaceSection(doc: string, name: string, body: string): string {
  const begin = `<!-- bench:${name}:begin -->`;
  const end = `<!-- bench:${name}:end -->`;
  const block = `${begin}\n${body.trim()}\n${end}`;
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) return `${doc.trimEnd()}\n\n${block}\n`;
  return doc.slice(0, i) + block + doc.slice(j + end.length);
}

export function updateBenchmarksDoc(path: string, sections: Record<string, string>): void {
  let doc: string;
  try {
    doc = readFileSync(path, 'utf8');
  } catch {
    doc = '# Benchmarks\n';
  }
  for (const [name, body] of Object.entries(sections)) doc = replaceSection(doc, name, body);
  writeFileAtomic(path, doc, 0o644);
}
