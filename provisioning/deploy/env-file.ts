import { TsunaguError } from '../../protocol/errors.js';

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

function bad(source: string, line: number, why: string): never {
  throw new TsunaguError('CONFIG', `${source}:${line}: ${why}`, { file: source, line });
}

/**
 * Parse a dotenv file, following the rules of the `dotenv` package and of
 * Compose's `--env-file`: `KEY=VALUE` per line, optional `export ` prefix,
 * `#` comments and blank lines ignored; unquoted values are trimmed and end at
 * ` #`; single quotes keep the text literally; double quotes expand \n \r \t
 * \" \\ and may span lines; backquotes are literal. No variable expansion:
 * a secret containing `$` arrives as written. A later key overrides an
 * earlier one. Malformed lines are refused with their line number rather
 * than skipped, because a skipped line is a secret silently missing.
 */
export function parseEnvFile(text: string, source = 'env file'): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i]!.trimStart();
    if (line === '' || line.startsWith('#')) continue;
    if (/^export\s+/.test(line)) line = line.replace(/^export\s+/, '');
    const eq = line.indexOf('=');
    if (eq < 0) bad(source, lineNo, 'expected KEY=VALUE');
    const key = line.slice(0, eq).trim();
    if (!NAME.test(key)) bad(source, lineNo, `"${key}" is not a variable name`);
    let rest = line.slice(eq + 1).trimStart();
    const quote = rest[0];
    if (quote === '"' || quote === "'" || quote === '`') {
      rest = rest.slice(1);
      let body = '';
      let closed = -1;
      // Quoted values may span lines until the closing quote.
      for (;;) {
        closed = findClosing(rest, quote);
        if (closed >= 0) { body += rest.slice(0, closed); break; }
        body += `${rest}\n`;
        i++;
        if (i >= lines.length) bad(source, lineNo, `unterminated ${quote} quote`);
        rest = lines[i]!;
      }
      const after = rest.slice(closed + 1).trim();
      if (after !== '' && !after.startsWith('#')) bad(source, lineNo, `unexpected text after the closing quote: "${after}"`);
      out[key] = quote === '"' ? unescapeDouble(body) : body;
    } else {
      const hash = rest.search(/\s#/);
      out[key] = (hash >= 0 ? rest.slice(0, hash) : rest).trim();
    }
  }
  return out;
}

function findClosing(text: string, quote: string): number {
  for (let j = 0; j < text.length; j++) {
    if (quote === '"' && text[j] === '\\') { j++; continue; }
    if (text[j] === quote) return j;
  }
  return -1;
}

function unescapeDouble(text: string): string {
  return text.replace(/\\(.)/g, (_m, c: string) => ({ n: '\n', r: '\r', t: '\t' } as Record<string, string>)[c] ?? c);
}
