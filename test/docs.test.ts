/** Documentation stays in step with the code: every error code and event type is documented. */
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { ERROR_CATALOGUE, EVENT_TYPES } from '../src/core/index.ts';

const read = (file: string) => readFileSync(new URL(`../docs/${file}`, import.meta.url), 'utf8');

describe('docs', () => {
  it('docs/errors.md has a table row for exactly the codes in the catalogue', () => {
    const documented = [...read('errors.md').matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(new Set(documented)).toEqual(new Set(Object.keys(ERROR_CATALOGUE)));
  });

  it('docs/concepts.md names every event type', () => {
    const text = read('concepts.md');
    const missing = EVENT_TYPES.filter((type) => !text.includes(`\`${type}\``));
    expect(missing).toEqual([]);
  });

  it('docs/cli.md documents every command', () => {
    const text = read('cli.md');
    const commands = [
      'init',
      'run',
      'validate',
      'resume',
      'ps',
      'inspect',
      'events',
      'interrupts',
      'approve',
      'deny',
      'answer',
      'cancel',
      'ledger verify',
      'doctor',
      'tasks',
      'dlq',
      'submit',
    ];
    const missing = commands.filter((c) => !text.includes(`warden ${c}`));
    expect(missing).toEqual([]);
  });
});
