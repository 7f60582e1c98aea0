/**
 * Warden tool names (`http.fetch`, `mcp.files.read_file`) hold dots, which OpenAI and Anthropic
 * function names forbid (`^[a-zA-Z0-9_-]{1,64}$`). A ToolNameMap, built per request from every
 * name the request uses, maps them reversibly:
 *
 * - readable: `.` → `__`, for a name of letters, digits, `-`, `.` and single `_` not next to a
 *   dot, at most 64 characters once mapped. Runs of underscores then decode unambiguously (one
 *   is `_`, 2k are k dots), so `http.fetch` ↔ `http__fetch`.
 * - hashed: any other name (too long, other characters, `__`, `_.`) becomes its sanitized prefix,
 *   `_` and 8 hex digits of its SHA-256, e.g. `mcp__files__a_very_long…_3f2a9c1d`.
 *
 * Readable names are assigned first, so they never depend on what else is in the request; a
 * hashed name that happens to collide with a taken one is rehashed with a counter. Names the
 * model invents that were not offered do not decode (`fromApi` returns undefined).
 */
import { sha256Hex } from '../../core/index.ts';

/** The function-name rule shared by the OpenAI and Anthropic APIs. */
export const API_TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

const MAX_LENGTH = 64;
const HASH_LENGTH = 8;

export class ToolNameMap {
  readonly #toApi = new Map<string, string>();
  readonly #fromApi = new Map<string, string>();

  constructor(names: Iterable<string>) {
    const unique = [...new Set(names)];
    const rest: string[] = [];
    for (const name of unique) {
      const readable = readableName(name);
      if (readable === undefined) rest.push(name);
      else this.#set(name, readable);
    }
    for (const name of rest) {
      let attempt = 0;
      let candidate = hashedName(name, attempt);
      while (this.#fromApi.has(candidate)) candidate = hashedName(name, ++attempt);
      this.#set(name, candidate);
    }
  }

  /** The API name of a Warden tool name (names outside the map are mapped on the fly). */
  toApi(name: string): string {
    const known = this.#toApi.get(name);
    if (known !== undefined) return known;
    // Only reached for names the map was not built with: give them a stable slot too.
    let attempt = 0;
    let candidate = readableName(name) ?? hashedName(name, attempt);
    while (this.#fromApi.has(candidate)) candidate = hashedName(name, ++attempt);
    this.#set(name, candidate);
    return candidate;
  }

  /** The Warden name of an API name, or undefined when no tool of the request has it. */
  fromApi(apiName: string): string | undefined {
    return this.#fromApi.get(apiName);
  }

  #set(name: string, apiName: string): void {
    this.#toApi.set(name, apiName);
    this.#fromApi.set(apiName, name);
  }
}

/** The readable API name of `name`, or undefined when it would be ambiguous or too long. */
export function readableName(name: string): string | undefined {
  if (!/^[a-zA-Z0-9_.-]+$/.test(name)) return undefined;
  if (name.includes('__') || name.includes('_.') || name.includes('._')) return undefined;
  const mapped = name.replaceAll('.', '__');
  return mapped.length <= MAX_LENGTH ? mapped : undefined;
}

function hashedName(name: string, attempt: number): string {
  const hash = sha256Hex(attempt === 0 ? name : `${name}\u0000${attempt}`).slice(0, HASH_LENGTH);
  const prefix = name
    .replaceAll('.', '__')
    .replace(/[^a-zA-Z0-9_-]/g, '_')
    .slice(0, MAX_LENGTH - HASH_LENGTH - 1);
  return `${prefix}_${hash}`;
}

/** Every tool name a request uses: the offered tools and the calls in its history. */
export function requestToolNames(request: {
  readonly tools?: readonly { readonly name: string }[];
  readonly messages: readonly {
    readonly role: string;
    readonly name?: string;
    readonly tool_calls?: readonly { readonly name: string }[];
  }[];
}): string[] {
  const names = (request.tools ?? []).map((t) => t.name);
  for (const message of request.messages) {
    for (const call of message.tool_calls ?? []) names.push(call.name);
    if (message.role === 'tool' && message.name !== undefined) names.push(message.name);
  }
  return names;
}
