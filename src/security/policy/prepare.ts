/**
 * Policy files → a validated, versioned {@link PreparedPolicy} (step one of validate-then-swap:
 * nothing here changes what the PDP decides). The version is the sha256 of the canonical JSON
 * of the `{name: text}` map, so the same files always make the same version and any change to
 * any file makes a new one.
 */
import { posix } from 'node:path';

import {
  canonicalJson,
  checkParams,
  compileYamlPolicy,
  param,
  policyInvalid,
  type PolicyMode,
  sha256Hex,
  type TrustLevel,
} from '../../core/index.ts';
import { BASE_POLICIES, BUILTIN_FILE } from './base-policies.ts';
import { type CompiledPolicy, parseCedarFile } from './cedar.ts';

/** Largest policy file accepted (a policy is small; a bound keeps loading bounded). */
export const MAX_POLICY_FILE_BYTES = 1024 * 1024;

/** A policy version, validated and ready to activate. Frozen. */
export interface PreparedPolicy {
  /** sha256 hex of the canonical `{name: text}` map of the files. */
  readonly version: string;
  /** The files as given (persist them under `version` before activating). */
  readonly source: Readonly<Record<string, string>>;
  /** `audit` when any YAML file says `mode: audit`. */
  readonly mode: PolicyMode;
  /** Principal pattern → trust level, merged from every YAML file. */
  readonly trust: Readonly<Record<string, TrustLevel>>;
  /** Every policy in force, the built-in ones last. */
  readonly policies: readonly CompiledPolicy[];
  readonly warnings: readonly string[];
  /** The whole version as Cedar text, file by file (for `warden policy show`). */
  readonly cedar: string;
}

export interface LoadPolicyOptions {
  /** Directory policy file names are relative to (WARDEN_HOME), for relative YAML roots. */
  readonly baseDir?: string;
}

const prepared = new WeakSet<PreparedPolicy>();

/** True for a PreparedPolicy made by {@link preparePolicy} (activation trusts only those). */
export function isPreparedPolicy(value: unknown): value is PreparedPolicy {
  return typeof value === 'object' && value !== null && prepared.has(value as PreparedPolicy);
}

let builtins: readonly CompiledPolicy[] | undefined;

const loadArgs = param.options({
  files: param.is<Record<string, string>>(
    'an object of file name → text (readPolicyFiles(home))',
    (v) =>
      typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v) &&
      Object.values(v).every((t) => typeof t === 'string'),
  ),
  options: param
    .options({ baseDir: param.nonEmpty('a directory path', 4096).optional() })
    .optional(),
});

/**
 * Validates and compiles policy files (`*.yaml`/`*.yml` compiled from YAML, `*.cedar` raw).
 * Throws POLICY_INVALID naming the file, the line and what is wrong; INVALID_PARAMS for
 * arguments of the wrong type.
 */
export function preparePolicy(
  files: Readonly<Record<string, string>>,
  options: LoadPolicyOptions = {},
): PreparedPolicy {
  checkParams('PolicyDecisionPoint.load', loadArgs, { files, options });
  const policies: CompiledPolicy[] = [];
  const trust: Record<string, TrustLevel> = {};
  const trustFile: Record<string, string> = {};
  const warnings: string[] = [];
  let mode: PolicyMode = 'enforce';
  for (const name of Object.keys(files).sort()) {
    const text = files[name]!;
    if (Buffer.byteLength(text, 'utf8') > MAX_POLICY_FILE_BYTES)
      throw policyInvalid(
        name,
        [{ path: '(file)', message: `larger than ${MAX_POLICY_FILE_BYTES} bytes: split it` }],
        'is too large',
      );
    if (/\.ya?ml$/.test(name)) {
      const baseDir =
        options.baseDir === undefined
          ? undefined
          : posix.join(options.baseDir, posix.dirname(name));
      const compiled = compileYamlPolicy(text, name, { baseDir });
      policies.push(...parseCedarFile(name, compiled.cedar, compiled.lines));
      for (const [key, level] of Object.entries(compiled.trust)) {
        if (trust[key] !== undefined && trust[key] !== level)
          throw policyInvalid(
            name,
            [
              {
                path: 'trust',
                message: `${key} has trust ${level} here and ${trust[key]} in ${trustFile[key]}: keep one`,
              },
            ],
            'conflicts with another policy file',
          );
        trust[key] = level;
        trustFile[key] = name;
      }
      if (compiled.mode === 'audit') mode = 'audit';
      warnings.push(...compiled.warnings);
    } else if (name.endsWith('.cedar')) {
      policies.push(...parseCedarFile(name, text));
    } else {
      throw policyInvalid(
        name,
        [{ path: '(file)', message: 'expected a .yaml, .yml or .cedar file' }],
        'is not a policy file',
      );
    }
  }
  builtins ??= Object.freeze(parseCedarFile(BUILTIN_FILE, BASE_POLICIES, null));
  policies.push(...builtins);
  const seen = new Map<string, CompiledPolicy>();
  for (const p of policies) {
    const other = seen.get(p.id);
    if (other !== undefined)
      throw policyInvalid(
        p.file,
        [
          {
            path: 'cedar',
            line: p.line ?? undefined,
            message: `policy id "${p.id}" is also used in ${other.file}${other.line === null ? '' : `:${other.line}`}: ids must be unique`,
          },
        ],
        'is not a valid policy',
      );
    seen.set(p.id, p);
  }
  const result: PreparedPolicy = Object.freeze({
    version: sha256Hex(canonicalJson(files)),
    source: Object.freeze({ ...files }),
    mode,
    trust: Object.freeze(trust),
    policies: Object.freeze(policies),
    warnings: Object.freeze(warnings),
    cedar: cedarText(policies),
  });
  prepared.add(result);
  return result;
}

function cedarText(policies: readonly CompiledPolicy[]): string {
  let out = '';
  let file: string | undefined;
  for (const p of policies) {
    if (p.file !== file) {
      out += `${out === '' ? '' : '\n'}// ---- ${p.file} ----\n\n`;
      file = p.file;
    }
    out += `${p.cedar}\n\n`;
  }
  return out;
}
