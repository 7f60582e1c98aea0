/**
 * Validates a call's arguments against its tool's JSON Schema before anything else happens
 * (ajv, schemas compiled once per tool and cached). A schema that does not compile refuses
 * every call of that tool, with the reason.
 */
import { Ajv, type ValidateFunction } from 'ajv';

import type { ToolSpec } from '../../runtime/index.ts';

export class ArgsValidator {
  readonly #ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
  readonly #compiled = new WeakMap<object, ValidateFunction | string>();

  /** A message naming every problem, or undefined when the arguments are valid. */
  check(tool: ToolSpec, args: unknown): string | undefined {
    let validate = this.#compiled.get(tool.inputSchema);
    if (validate === undefined) {
      try {
        validate = this.#ajv.compile(tool.inputSchema);
      } catch (error) {
        validate = `the input schema of ${tool.name} is invalid: ${(error as Error).message}`;
      }
      this.#compiled.set(tool.inputSchema, validate);
    }
    if (typeof validate === 'string') return validate;
    if (validate(args)) return undefined;
    const problems = (validate.errors ?? []).map(
      (e) => `${e.instancePath || '(arguments)'} ${e.message ?? 'is invalid'}`,
    );
    return `invalid arguments for ${tool.name}: ${problems.join('; ')}`;
  }
}
