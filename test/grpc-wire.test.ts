/**
 * Wire contract of `proto/jeeves/engine/v1/engine.proto` (the Go-era `jeeves.engine.v1` API).
 * Two independent copies are compared: the .proto, and test/fixtures/jeeves/fields.json, which
 * was transcribed from the reference tables (jeeves-engine-api.md §1–§2), not from the .proto.
 * Then every message is encoded by protobufjs and by the hand encoder in helpers/proto-wire.ts;
 * the bytes must match, so renumbering or retyping a field fails here with its name.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';

import {
  encodeMessage,
  type EnumRow,
  type FieldRow,
  hex,
  varint,
  type WireSchema,
} from './helpers/proto-wire.ts';

type RpcRow = [rpc: string, request: string, response: string, kind: 'unary' | 'server-streaming'];
interface Fixture extends WireSchema {
  package: string;
  services: Record<string, RpcRow[]>;
}

const PROTO = fileURLToPath(new URL('../proto/jeeves/engine/v1/engine.proto', import.meta.url));
const fixture = JSON.parse(
  readFileSync(new URL('./fixtures/jeeves/fields.json', import.meta.url), 'utf8'),
) as Fixture;

const root = new protobuf.Root().loadSync(PROTO, { keepCase: true });
root.resolveAll();
const pkg = packageOf(root, fixture.package);

function packageOf(from: protobuf.Root, name: string): protobuf.Namespace {
  const found = from.lookup(name);
  if (!(found instanceof protobuf.Namespace))
    throw new Error(`engine.proto has no package ${name}`);
  return found;
}

const messageNames = Object.keys(fixture.messages);
const enumNames = Object.keys(fixture.enums);

function protoType(name: string): protobuf.Type {
  const found = pkg.get(name);
  if (!(found instanceof protobuf.Type)) throw new Error(`engine.proto has no message ${name}`);
  return found;
}

/** A .proto field in the fixture's row form. */
function rowOf(field: protobuf.Field): FieldRow {
  const type = field.resolvedType?.name ?? field.type;
  if (field instanceof protobuf.MapField) {
    return [field.id, field.name, `map<${field.keyType},${type}>`, 'map'];
  }
  if (field.repeated) return [field.id, field.name, type, 'repeated'];
  const optional = field.options?.proto3_optional === true;
  return [field.id, field.name, type, optional ? 'optional' : 'singular'];
}

describe('engine.proto matches the reference transcription', () => {
  it('declares exactly the reference messages, enums and services', () => {
    const kinds = { messages: [] as string[], enums: [] as string[], services: [] as string[] };
    for (const nested of pkg.nestedArray) {
      if (nested instanceof protobuf.Type) kinds.messages.push(nested.name);
      else if (nested instanceof protobuf.Enum) kinds.enums.push(nested.name);
      else if (nested instanceof protobuf.Service) kinds.services.push(nested.name);
      else throw new Error(`unexpected ${nested.name} in ${fixture.package}`);
    }
    expect(kinds.messages.sort()).toEqual([...messageNames].sort());
    expect(kinds.enums.sort()).toEqual([...enumNames].sort());
    expect(kinds.services.sort()).toEqual(Object.keys(fixture.services).sort());
    expect(messageNames).toHaveLength(58);
    expect(enumNames).toHaveLength(19);
    // Nothing else anywhere in the file: `jeeves.engine.v1` is the only path from the root.
    expect(root.nestedArray.map((n) => n.name)).toEqual(['jeeves']);
  });

  it.each(messageNames)('%s has the reference fields (number, name, type, label)', (name) => {
    const type = protoType(name);
    const reference = fixture.messages[name]!;
    for (const row of reference) {
      const field = type.fields[row[1]];
      expect(field, `${name}.${row[1]} is missing from engine.proto`).toBeDefined();
      expect(rowOf(field!), `${name}.${row[1]} (number, name, type, label)`).toEqual(row);
    }
    const extra = type.fieldsArray
      .map((f) => f.name)
      .filter((f) => !reference.some((r) => r[1] === f));
    expect(extra, `${name}: fields not in the reference`).toEqual([]);
    // Declared in number order (see the .proto header).
    const ids = type.fieldsArray.map((f) => f.id);
    expect(ids, `${name}: fields declared out of number order`).toEqual(
      [...ids].sort((a, b) => a - b),
    );
    // No oneofs except the synthetic `_x` ones protobufjs makes for `optional x`, no nested types.
    const optionals = reference.filter((r) => r[3] === 'optional').map((r) => `_${r[1]}`);
    expect(type.oneofsArray.map((o) => o.name).sort(), `${name}: oneofs`).toEqual(optionals.sort());
    expect(
      type.nestedArray.map((n) => n.name),
      `${name}: nested types`,
    ).toEqual([]);
  });

  it.each(enumNames)('%s has exactly the reference values', (name) => {
    const declared = pkg.get(name);
    expect(declared, `engine.proto has no enum ${name}`).toBeInstanceOf(protobuf.Enum);
    const values = Object.entries((declared as protobuf.Enum).values).map(
      ([valueName, number]): EnumRow => [number, valueName],
    );
    expect(values, `${name} values`).toEqual(fixture.enums[name]);
    expect(values[0]?.[0], `${name} starts at 0`).toBe(0);
  });

  it('enum value names are unique in the package (proto3 puts them in package scope)', () => {
    const names = pkg.nestedArray
      .filter((n): n is protobuf.Enum => n instanceof protobuf.Enum)
      .flatMap((e) => Object.keys(e.values));
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  it('has the 25 RPCs of §1 in 4 services, with their types and streaming kinds', () => {
    let count = 0;
    for (const [serviceName, rpcs] of Object.entries(fixture.services)) {
      const service = pkg.get(serviceName) as protobuf.Service;
      const declared = service.methodsArray.map((m): RpcRow => {
        expect(m.requestStream ?? false, `${serviceName}.${m.name} client-streaming`).toBe(false);
        const kind = m.responseStream ? 'server-streaming' : 'unary';
        return [m.name, m.resolvedRequestType!.name, m.resolvedResponseType!.name, kind];
      });
      expect(declared, serviceName).toEqual(rpcs);
      count += declared.length;
    }
    expect(Object.keys(fixture.services)).toHaveLength(4);
    expect(count).toBe(25);
  });

  it('loads with @grpc/proto-loader under the original method paths', () => {
    const definition = protoLoader.loadSync(PROTO, { keepCase: true });
    for (const [serviceName, rpcs] of Object.entries(fixture.services)) {
      const service = definition[
        `${fixture.package}.${serviceName}`
      ] as protoLoader.ServiceDefinition;
      expect(Object.keys(service).sort(), serviceName).toEqual(rpcs.map(([rpc]) => rpc).sort());
      for (const [rpc, , , kind] of rpcs) {
        const method = service[rpc]!;
        expect(method.path).toBe(`/${fixture.package}.${serviceName}/${rpc}`);
        expect(method.requestStream, `${serviceName}.${rpc}`).toBe(false);
        expect(method.responseStream, `${serviceName}.${rpc}`).toBe(kind === 'server-streaming');
      }
    }
  });
});

/**
 * A value of `message` with every field set and distinct where the type allows: `optional`
 * fields hold their zero value (to show presence is encoded), repeated fields two entries, maps
 * two. Per message, the first int32 and the second int64 are negative (10-byte varints) and every
 * int64 is beyond 2^32. Floats are exact in float32 so decoding gives them back unchanged.
 */
function sampleValue(message: string): Record<string, unknown> {
  let seq = 0;
  const counts = new Map<string, number>();

  function scalar(type: string, path: string[]): unknown {
    seq += 1;
    const nth = (counts.get(type) ?? 0) + 1;
    counts.set(type, nth);
    if (type in fixture.messages) return build(type, [...path, type]);
    const enumRows = fixture.enums[type];
    if (enumRows) {
      const nonZero = enumRows.filter(([n]) => n !== 0);
      return nonZero[seq % nonZero.length]![0];
    }
    switch (type) {
      case 'string':
        return `s${seq}·é🙂`;
      case 'int32':
        return nth % 2 === 1 ? -(seq * 1000 + 7) : seq * 100_003;
      case 'int64':
        return nth % 2 === 1 ? String(1_700_000_000_000 + seq) : String(-(2 ** 35) - seq);
      case 'bool':
        return true;
      case 'float':
        return nth % 2 === 1 ? seq + 0.5 : -(seq + 0.25);
      case 'double':
        return seq * 1000 + 0.123;
      case 'bytes':
        return Buffer.from([seq & 0xff, 0, 0xff, 0x80]).toString('base64');
      default:
        throw new Error(`no sample for type ${type}`);
    }
  }

  function zero(type: string): unknown {
    if (type === 'int64') return '0';
    if (type === 'string' || type === 'bytes') return '';
    return type === 'bool' ? false : 0;
  }

  function build(name: string, path: string[]): Record<string, unknown> {
    if (path.slice(0, -1).includes(name)) throw new Error(`recursive message ${path.join('.')}`);
    const value: Record<string, unknown> = {};
    for (const [, field, type, label] of fixture.messages[name]!) {
      if (label === 'optional') value[field] = zero(type);
      else if (label === 'repeated') value[field] = [scalar(type, path), scalar(type, path)];
      else if (label === 'map') {
        const valueType = /,(\w+)>$/.exec(type)![1]!;
        value[field] = {
          [`${field}-a${seq}`]: scalar(valueType, path),
          [`${field}-b${seq}`]: scalar(valueType, path),
        };
      } else value[field] = scalar(type, path);
    }
    return value;
  }

  return build(message, [message]);
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: Number, bytes: String };

function protobufjsBytes(type: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  return type.encode(type.fromObject(value)).finish();
}

/**
 * The fields whose bytes differ when encoded alone by protobufjs and by the hand encoder, followed
 * down into sub-messages so that a renumbered `Envelope.max_llm_calls` is named as such even when
 * found through `ExecuteRequest.envelope`.
 */
function differingFields(message: string, value: Record<string, unknown>): string[] {
  const type = protoType(message);
  return fixture.messages[message]!.flatMap(([number, field, fieldType, label]) => {
    const alone = { [field]: value[field] };
    if (hex(protobufjsBytes(type, alone)) === hex(encodeMessage(fixture, message, alone)))
      return [];
    const here = `${message}.${field} (#${number})`;
    if (!(fieldType in fixture.messages)) return [here];
    const first: unknown = label === 'repeated' ? (value[field] as unknown[])[0] : value[field];
    const inner = differingFields(fieldType, first as Record<string, unknown>);
    return inner.length > 0 ? inner.map((path) => `${here} → ${path}`) : [here];
  });
}

describe('golden wire bytes', () => {
  it('the hand encoder reproduces the protobuf encoding guide examples', () => {
    const schema: WireSchema = {
      messages: {
        Test: [
          [1, 'a', 'int32', 'singular'],
          [2, 'b', 'string', 'singular'],
          [4, 'd', 'int32', 'repeated'],
        ],
      },
      enums: {},
    };
    expect(hex(encodeMessage(schema, 'Test', { a: 150 }))).toBe('089601');
    expect(hex(encodeMessage(schema, 'Test', { b: 'testing' }))).toBe('120774657374696e67');
    expect(hex(encodeMessage(schema, 'Test', { d: [3, 270, 86942] }))).toBe('2206038e029ea705');
    expect(hex(encodeMessage(schema, 'Test', { a: -1 }))).toBe('08ffffffffffffffffff01');
    expect(hex(encodeMessage(schema, 'Test', { a: 0, b: '' }))).toBe('');
    expect(varint(2n ** 35n)).toEqual([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
  });

  it.each(messageNames)('%s: protobufjs writes the hand-encoded golden bytes', (name) => {
    const type = protoType(name);
    const value = sampleValue(name);
    const golden = encodeMessage(fixture, name, value);
    const actual = protobufjsBytes(type, value);
    if (hex(actual) !== hex(golden)) {
      const culprits = differingFields(name, value).join(', ') || '?';
      expect.fail(`${name}: wire bytes differ from the reference in ${culprits}`);
    }
    expect(hex(actual)).toBe(hex(golden));
    expect(golden.length > 0, `${name}: a field-less message encodes to nothing`).toBe(
      fixture.messages[name]!.length > 0,
    );
  });

  it.each(messageNames)('%s: golden bytes decode back to the same value', (name) => {
    const type = protoType(name);
    const value = sampleValue(name);
    const golden = encodeMessage(fixture, name, value);
    const decoded = type.decode(golden);
    expect(type.toObject(decoded, TO_OBJECT)).toEqual(value);
    expect(hex(type.encode(decoded).finish())).toBe(hex(golden));
  });

  it('an `optional` field set to zero is on the wire and decodes as present', () => {
    const type = protoType('GenerationParams');
    const value = { top_p: 0, seed: 0 };
    const golden = encodeMessage(fixture, 'GenerationParams', value);
    // top_p: tag 3/fixed32 + four zero bytes; seed: tag 5/varint + 0.
    expect(hex(golden)).toBe('1d00000000' + '2800');
    expect(hex(protobufjsBytes(type, value))).toBe(hex(golden));
    const decoded = type.toObject(type.decode(golden), TO_OBJECT);
    expect(decoded).toEqual({ top_p: 0, seed: 0 });
    expect(decoded).not.toHaveProperty('repeat_penalty');
  });
});
