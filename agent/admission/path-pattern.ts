import { posix } from 'node:path';

/**
 * Host path patterns of the device's security policy. `*` matches any
 * characters within one path segment (a leading dot too); `**`, as a whole
 * segment, matches any number of segments, none included (`/srv/app/**`
 * covers `/srv/app` itself). Nothing else is special: the people who read a
 * policy decide what a container may touch, and bash's braces, classes and
 * extglobs would make that harder to read, not safer.
 */

/** Why a pattern is unusable, or null. Patterns are absolute and already normalised: no `.`, `..`, `//` or trailing `/`. */
export function pathPatternProblem(pattern: string): string | null {
  if (!pattern.startsWith('/')) return 'must be an absolute path';
  if (pattern !== '/' && pattern.endsWith('/')) return 'must not end with /';
  if (posix.normalize(pattern) !== pattern || pattern.split('/').includes('..')) return 'must be normalised (no ., .. or //)';
  for (const segment of pattern.split('/')) {
    if (segment.includes('**') && segment !== '**') return '** must be a whole path segment';
  }
  return null;
}

function segmentRegex(segment: string): RegExp {
  const body = segment.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*');
  return new RegExp(`^${body}$`);
}

/** True when `path` (absolute, normalised) is matched by `pattern` (see pathPatternProblem). */
export function matchesPathPattern(pattern: string, path: string): boolean {
  const pat = pattern.split('/').filter((s) => s !== '');
  const segs = path.split('/').filter((s) => s !== '');
  const regexes = pat.map((p) => (p === '**' ? null : segmentRegex(p)));
  // memo[i][j]: pattern from i matches path from j. Patterns and paths are short; this stays tiny.
  const memo = new Map<number, boolean>();
  const match = (i: number, j: number): boolean => {
    const key = i * (segs.length + 1) + j;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let result: boolean;
    if (i === pat.length) result = j === segs.length;
    else if (regexes[i] === null) result = match(i + 1, j) || (j < segs.length && match(i, j + 1));
    else result = j < segs.length && (regexes[i] as RegExp).test(segs[j] as string) && match(i + 1, j + 1);
    memo.set(key, result);
    return result;
  };
  return match(0, 0);
}

/** True when `path` is `ancestor` or lies below it (both absolute and normalised). */
export function isWithin(path: string, ancestor: string): boolean {
  if (ancestor === '/') return true;
  return path === ancestor || path.startsWith(`${ancestor}/`);
}
