/** Reads the kit's JSON files: strict UTF-8, JSON, then the schema; every failure a KitError. */
import { readFileSync, statSync } from 'node:fs';

import type { z } from 'zod';

import { checkFile } from '../core/plan/index.ts';
import { KitError } from './kit-error.ts';

/** `[error] <what> not found: <file>` unless `file` is a regular file (the kit's check). */
export function assertFile(file: string, what: string, shown = file): void {
  let isFile = false;
  try {
    isFile = statSync(file).isFile();
  } catch {
    // missing, or unreadable: the same answer as the kit
  }
  if (!isFile) throw new KitError(`${what} not found: ${shown}`, 1, 'NOT_FOUND');
}

/** The file's text as strict UTF-8 (a BOM is kept as U+FEFF, as Python's `utf-8` codec does). */
export function readUtf8(file: string, what: string, shown = file): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new KitError(`cannot read ${what} ${shown}: ${(error as Error).message}`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new KitError(`${what} ${shown} is not valid UTF-8; save it as UTF-8 and try again`);
  }
}

/** Parses and validates a JSON file; the message names the file, where, and what was expected. */
export function readJsonFile<T>(schema: z.ZodType<T>, file: string, what: string): T {
  const text = readUtf8(file, what);
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (error) {
    // V8 quotes the text around the problem, line breaks included: keep the `[error]` one line.
    const detail = (error as Error).message.replace(/\r?\n|\r/g, '\\n');
    throw new KitError(`invalid ${what} ${file}: not JSON (${detail})`);
  }
  const checked = checkFile(schema, value);
  if (checked.ok) return checked.value;
  const shown = checked.issues.slice(0, 10).map((i) => `${i.path}: ${i.message}`);
  const more = checked.issues.length > 10 ? `; and ${checked.issues.length - 10} more` : '';
  throw new KitError(`invalid ${what} ${file}: ${shown.join('; ')}${more}`);
}
