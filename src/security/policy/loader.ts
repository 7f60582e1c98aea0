/**
 * Reads the policy files of a Warden home: `policy.yaml` and `policies/*.cedar|*.yaml|*.yml`,
 * as a `{name: text}` map with names relative to the home (`policy.yaml`,
 * `policies/extra.cedar`), sorted. No files: an empty map, which the PDP loads as deny-all.
 * Resolving real paths and persisting the version are the caller's job.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { WardenError } from '../../core/index.ts';

const POLICY_FILE = /\.(cedar|ya?ml)$/;

function read(home: string, name: string): string {
  try {
    return readFileSync(join(home, name), 'utf8');
  } catch (e) {
    throw new WardenError(
      'POLICY_INVALID',
      `cannot read ${join(home, name)}: ${(e as Error).message}; fix its permissions or remove it`,
      { cause: e, details: { file: name } },
    );
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The policy files under `home` (WARDEN_HOME). POLICY_INVALID when one cannot be read. */
export function readPolicyFiles(home: string): Record<string, string> {
  const files: Record<string, string> = {};
  if (isFile(join(home, 'policy.yaml'))) files['policy.yaml'] = read(home, 'policy.yaml');
  let entries: string[] = [];
  try {
    entries = readdirSync(join(home, 'policies'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new WardenError(
        'POLICY_INVALID',
        `cannot list ${join(home, 'policies')}: ${(e as Error).message}`,
        { cause: e, details: { file: 'policies' } },
      );
  }
  for (const entry of entries.sort()) {
    const name = `policies/${entry}`;
    if (POLICY_FILE.test(entry) && isFile(join(home, name))) files[name] = read(home, name);
  }
  return files;
}
