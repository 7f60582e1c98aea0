/** JSON values and canonical serialisation (sorted keys, no whitespace) for hashing. */

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * Canonical JSON: object keys sorted by code unit, no insignificant whitespace, `undefined`
 * members dropped. Two equal values always serialise to the same string, so hashes are stable.
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      return 'null'; // undefined, functions and symbols, as JSON.stringify writes them in arrays
  }
  if (value === null) return 'null';
  // Like JSON.stringify, honour toJSON (a Date hashes as its ISO string, as it is stored).
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return canonicalJson((value as { toJSON: () => unknown }).toJSON());
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  if (isFlatAndSorted(record)) return JSON.stringify(record); // the common event payload, natively
  const keys = Object.keys(record).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const member = record[key];
    if (member === undefined || typeof member === 'function' || typeof member === 'symbol')
      continue;
    out += `${first ? '' : ','}${JSON.stringify(key)}:${canonicalJson(member)}`;
    first = false;
  }
  return `${out}}`;
}

/**
 * A plain object whose keys are already in canonical order and whose values are strings, finite
 * numbers, booleans or null: JSON.stringify writes exactly its canonical form.
 */
function isFlatAndSorted(record: Record<string, unknown>): boolean {
  if (Object.getPrototypeOf(record) !== Object.prototype) return false;
  let previous: string | undefined;
  for (const key in record) {
    if (!Object.hasOwn(record, key)) return false;
    if (previous !== undefined && !(previous < key)) return false;
    previous = key;
    const member = record[key];
    switch (typeof member) {
      case 'string':
      case 'boolean':
        continue;
      case 'number':
        if (Number.isFinite(member)) continue;
        return false;
      case 'object':
        if (member === null) continue;
        return false;
      default:
        return false;
    }
  }
  return true;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads a dotted path (`a.b.0.c`) from a value; undefined when any step is missing. */
export function readPath(root: unknown, path: string): unknown {
  let current: unknown = root;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}
