/** Documentation stays in step with the code: every error code and event type is documented. */
import { readFileSync } from 'node:fs';

import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';

import { buildProgram } from '../src/cli/program.ts';
import { ERROR_CATALOGUE, EVENT_TYPES } from '../src/core/index.ts';

/** Every runnable command path of the CLI: `run`, `ledger verify`, … */
function commandPaths(command: Command, prefix: string[] = []): string[][] {
  return command.commands.flatMap((c) => {
    const path = [...prefix, c.name()];
    return c.commands.length ? commandPaths(c, path) : [path];
  });
}

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

  it('docs/cli.md documents every command of the CLI, in its table and in a section', () => {
    const text = read('cli.md');
    const paths = commandPaths(buildProgram(() => {}));
    expect(paths.length).toBeGreaterThan(15);
    const noSection = paths.filter((p) => !text.includes(`\`warden ${p.join(' ')}\``));
    expect(noSection).toEqual([]);
    const rows = text.split('\n').filter((line) => line.startsWith('| ['));
    const noRow = paths.filter(
      (p) => !rows.some((row) => row.includes(`\`${p[0]} `) || row.includes(`\`${p[0]}\``)),
    );
    expect(noRow).toEqual([]);
  });
});
