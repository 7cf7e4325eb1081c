/** A `WWW-Authenticate` challenge of a registry: `Basic realm="…"` or `Bearer realm="…",service="…",scope="…"`. */
export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/**
 * Parse the first Basic or Bearer challenge of a `WWW-Authenticate` header
 * (RFC 7235: a scheme, then `name=value` pairs, values as tokens or quoted
 * strings with backslash escapes). Pure; undefined when there is neither.
 */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (header === undefined) return undefined;
  let i = 0;
  const text = header;
  const skipSpace = (): void => { while (i < text.length && /[\s,]/.test(text[i] ?? '')) i++; };
  const token = (): string => {
    const start = i;
    while (i < text.length && /[^\s,=]/.test(text[i] ?? '')) i++;
    return text.slice(start, i);
  };
  const value = (): string => {
    if (text[i] !== '"') return token();
    i++;
    let out = '';
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') i++;
      out += text[i] ?? '';
      i++;
    }
    i++; // closing quote
    return out;
  };
  while (i < text.length) {
    skipSpace();
    const scheme = token().toLowerCase();
    if (scheme === '') break;
    const params: Record<string, string> = {};
    for (;;) {
      skipSpace();
      const mark = i;
      const name = token();
      if (text[i] !== '=' || name === '') { i = mark; break; }
      i++;
      params[name.toLowerCase()] = value();
    }
    if (scheme === 'basic' || scheme === 'bearer') return { scheme, params };
  }
  return undefined;
}
