/**
 * A tiny proto3 wire encoder driven by a field table (test/fixtures/jeeves/fields.json), used as
 * an independent oracle for the bytes protobufjs produces from engine.proto. It knows only what
 * the jeeves schema uses: varint scalars (int32/int64/bool/enum), float (fixed32), double
 * (fixed64), length-delimited string/bytes/messages, packed repeated numerics and string-keyed
 * maps. Values use the protobufjs JSON form: int64 as a decimal string, bytes as base64, enums as
 * numbers, maps as plain objects.
 */

export type Label = 'singular' | 'repeated' | 'optional' | 'map';
/** [number, name, type, label]; for label `map`, type reads `map<K,V>`. */
export type FieldRow = [number, string, string, Label];
export type EnumRow = [number, string];

export interface WireSchema {
  messages: Record<string, FieldRow[]>;
  enums: Record<string, EnumRow[]>;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const VARINT_SCALARS = new Set(['int32', 'int64', 'bool']);

/** Unsigned LEB128. Negative int32/int64 are sign-extended to 64 bits, hence 10 bytes. */
export function varint(value: bigint): number[] {
  let rest = BigInt.asUintN(64, value);
  const out: number[] = [];
  while (rest >= 0x80n) {
    out.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  out.push(Number(rest));
  return out;
}

function tag(fieldNumber: number, wireType: number): number[] {
  return varint(BigInt((fieldNumber << 3) | wireType));
}

function lengthDelimited(fieldNumber: number, payload: number[]): number[] {
  return [...tag(fieldNumber, WIRE_LEN), ...varint(BigInt(payload.length)), ...payload];
}

function wireTypeOf(schema: WireSchema, type: string): number {
  if (VARINT_SCALARS.has(type) || type in schema.enums) return WIRE_VARINT;
  if (type === 'float') return WIRE_FIXED32;
  if (type === 'double') return WIRE_FIXED64;
  return WIRE_LEN;
}

/** The payload of one value, without its tag (and without a length prefix for LEN types). */
function payloadOf(schema: WireSchema, type: string, value: unknown): number[] {
  if (type in schema.messages) return encodeFields(schema, type, value as Record<string, unknown>);
  if (type in schema.enums) return varint(BigInt(value as number));
  switch (type) {
    case 'int32':
      return varint(BigInt(value as number));
    case 'int64':
      return varint(BigInt(value as string));
    case 'bool':
      return [value ? 1 : 0];
    case 'float': {
      const view = new DataView(new ArrayBuffer(4));
      view.setFloat32(0, value as number, true);
      return [...new Uint8Array(view.buffer)];
    }
    case 'double': {
      const view = new DataView(new ArrayBuffer(8));
      view.setFloat64(0, value as number, true);
      return [...new Uint8Array(view.buffer)];
    }
    case 'string':
      return [...new TextEncoder().encode(value as string)];
    case 'bytes':
      return [...Buffer.from(value as string, 'base64')];
    default:
      throw new Error(`proto-wire: unknown type ${type}`);
  }
}

function encodeOne(
  schema: WireSchema,
  fieldNumber: number,
  type: string,
  value: unknown,
): number[] {
  const wireType = wireTypeOf(schema, type);
  const payload = payloadOf(schema, type, value);
  return wireType === WIRE_LEN
    ? lengthDelimited(fieldNumber, payload)
    : [...tag(fieldNumber, wireType), ...payload];
}

/** Proto3 implicit presence: a singular scalar equal to its default is not written. */
function isDefault(schema: WireSchema, type: string, value: unknown): boolean {
  if (type in schema.messages) return false;
  if (type === 'int64') return BigInt(value as string) === 0n;
  return value === 0 || value === '' || value === false;
}

function encodeFields(
  schema: WireSchema,
  message: string,
  value: Record<string, unknown>,
): number[] {
  const rows = schema.messages[message];
  if (!rows) throw new Error(`proto-wire: unknown message ${message}`);
  const out: number[] = [];
  // Field-number order, as conformant encoders write.
  for (const [fieldNumber, name, type, label] of [...rows].sort((a, b) => a[0] - b[0])) {
    const field = value[name];
    if (field === undefined) continue;
    if (label === 'map') {
      const [, keyType, valueType] = /^map<(\w+),(\w+)>$/.exec(type) ?? [];
      if (!keyType || !valueType) throw new Error(`proto-wire: bad map type ${type}`);
      // An entry is a message { key = 1; value = 2 }, both always written.
      for (const [key, entry] of Object.entries(field as Record<string, unknown>)) {
        const body = [
          ...encodeOne(schema, 1, keyType, key),
          ...encodeOne(schema, 2, valueType, entry),
        ];
        out.push(...lengthDelimited(fieldNumber, body));
      }
    } else if (label === 'repeated') {
      const items = field as unknown[];
      if (wireTypeOf(schema, type) === WIRE_LEN) {
        for (const item of items) out.push(...encodeOne(schema, fieldNumber, type, item));
      } else if (items.length > 0) {
        // Proto3 packs repeated numerics: one LEN record holding the bare payloads.
        out.push(
          ...lengthDelimited(
            fieldNumber,
            items.flatMap((item) => payloadOf(schema, type, item)),
          ),
        );
      }
    } else if (label === 'optional' || !isDefault(schema, type, field)) {
      // `optional` has explicit presence: written even when it holds the zero value.
      out.push(...encodeOne(schema, fieldNumber, type, field));
    }
  }
  return out;
}

/** Encodes `value` as the message `message` of `schema`. */
export function encodeMessage(
  schema: WireSchema,
  message: string,
  value: Record<string, unknown>,
): Uint8Array {
  return Uint8Array.from(encodeFields(schema, message, value));
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
