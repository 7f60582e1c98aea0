/**
 * JSON carried in `bytes` fields (reference/jeeves-engine-api.md §3): strict UTF-8, then JSON,
 * then an object, each failure an INVALID_PARAMS that says which of the three went wrong.
 */
import { isJsonObject, type JsonObject } from '../json.ts';
import { describeValue, invalidParams } from '../params.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The JSON object in `input` (bytes or an already decoded string). `where` names the field in
 * messages (`pipeline_config`). Empty input is `{}` when `emptyIsObject` is set, else an error.
 */
export function decodeJsonObject(
  input: Uint8Array | string,
  where: string,
  options: { readonly emptyIsObject?: boolean } = {},
): JsonObject {
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    try {
      text = utf8.decode(input);
    } catch {
      throw invalidParams(where, [{ path: '', message: 'is not valid UTF-8; send UTF-8 JSON' }]);
    }
  }
  if (text.trim() === '') {
    if (options.emptyIsObject) return {};
    throw invalidParams(where, [{ path: '', message: 'is empty; expected a JSON object' }]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw invalidParams(where, [{ path: '', message: `is not valid JSON (${reason})` }]);
  }
  if (!isJsonObject(value)) {
    throw invalidParams(where, [
      { path: '', message: `expected a JSON object (got ${describeValue(value)})` },
    ]);
  }
  return value;
}
