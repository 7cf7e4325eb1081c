/**
 * A JSON Schema (2020-12) checker for the keywords docs/schemas/ uses, as a
 * third party's validator would read them. It refuses a keyword it does not
 * know rather than skipping it, so that a schema it cannot judge never passes
 * by accident. Returns the problems found, empty when the value conforms.
 */
type Schema = boolean | Record<string, unknown>;

const ANNOTATIONS = new Set(['$schema', 'title', 'description', 'default']);
const KEYWORDS = new Set([
  'type', 'properties', 'patternProperties', 'required', 'additionalProperties', 'propertyNames', 'maxProperties',
  'pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  'const', 'enum', 'oneOf', 'anyOf', 'items', 'prefixItems', 'minItems', 'maxItems',
]);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function typeMatches(expected: string, value: unknown): boolean {
  const actual = typeOf(value);
  return actual === expected || (expected === 'number' && actual === 'integer');
}

/** Code points, as JSON Schema counts string lengths. */
const length = (s: string): number => [...s].length;

export function checkJsonSchema(schema: Schema, value: unknown, path = '$'): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${path}: not allowed`];
  for (const key of Object.keys(schema)) {
    if (!KEYWORDS.has(key) && !ANNOTATIONS.has(key)) throw new Error(`${path}: the checker does not know the keyword ${key}`);
  }
  const s = schema;
  const errors: string[] = [];
  const sub = (child: unknown, v: unknown, p: string): string[] => checkJsonSchema(child as Schema, v, p);

  if (typeof s.type === 'string' && !typeMatches(s.type, value)) return [`${path}: expected ${s.type}, got ${typeOf(value)}`];
  if ('const' in s && JSON.stringify(s.const) !== JSON.stringify(value)) errors.push(`${path}: expected ${JSON.stringify(s.const)}`);
  if (Array.isArray(s.enum) && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) errors.push(`${path}: not one of ${JSON.stringify(s.enum)}`);
  if (Array.isArray(s.anyOf) && !s.anyOf.some((alt) => sub(alt, value, path).length === 0)) errors.push(`${path}: matches no anyOf branch`);
  if (Array.isArray(s.oneOf)) {
    const matching = s.oneOf.filter((alt) => sub(alt, value, path).length === 0).length;
    if (matching !== 1) errors.push(`${path}: matches ${matching} oneOf branches, not exactly one`);
  }
  if (typeof value === 'string') {
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(value)) errors.push(`${path}: does not match ${s.pattern}`);
    if (typeof s.minLength === 'number' && length(value) < s.minLength) errors.push(`${path}: shorter than ${s.minLength}`);
    if (typeof s.maxLength === 'number' && length(value) > s.maxLength) errors.push(`${path}: longer than ${s.maxLength}`);
  }
  if (typeof value === 'number') {
    if (typeof s.minimum === 'number' && value < s.minimum) errors.push(`${path}: below ${s.minimum}`);
    if (typeof s.maximum === 'number' && value > s.maximum) errors.push(`${path}: above ${s.maximum}`);
    if (typeof s.exclusiveMinimum === 'number' && value <= s.exclusiveMinimum) errors.push(`${path}: not above ${s.exclusiveMinimum}`);
    if (typeof s.exclusiveMaximum === 'number' && value >= s.exclusiveMaximum) errors.push(`${path}: not below ${s.exclusiveMaximum}`);
  }
  if (Array.isArray(value)) {
    const prefix: unknown[] = Array.isArray(s.prefixItems) ? s.prefixItems : [];
    value.forEach((item, i) => {
      const itemSchema = i < prefix.length ? prefix[i] : s.items;
      if (itemSchema !== undefined) errors.push(...sub(itemSchema, item, `${path}[${i}]`));
    });
    if (typeof s.minItems === 'number' && value.length < s.minItems) errors.push(`${path}: fewer than ${s.minItems} items`);
    if (typeof s.maxItems === 'number' && value.length > s.maxItems) errors.push(`${path}: more than ${s.maxItems} items`);
  }
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    const properties = (s.properties ?? {}) as Record<string, unknown>;
    for (const name of (s.required ?? []) as string[]) if (!(name in obj)) errors.push(`${path}: missing ${name}`);
    const patterns = Object.entries((s.patternProperties ?? {}) as Record<string, unknown>);
    for (const [name, v] of Object.entries(obj)) {
      const byPattern = patterns.filter(([pattern]) => new RegExp(pattern, 'u').test(name));
      for (const [, child] of byPattern) errors.push(...sub(child, v, `${path}.${name}`));
      if (name in properties) errors.push(...sub(properties[name], v, `${path}.${name}`));
      else if (byPattern.length === 0 && s.additionalProperties !== undefined) errors.push(...sub(s.additionalProperties, v, `${path}.${name}`));
      if (s.propertyNames !== undefined) errors.push(...sub(s.propertyNames, name, `${path} key ${JSON.stringify(name)}`));
    }
    if (typeof s.maxProperties === 'number' && Object.keys(obj).length > s.maxProperties) errors.push(`${path}: more than ${s.maxProperties} members`);
  }
  return errors;
}
