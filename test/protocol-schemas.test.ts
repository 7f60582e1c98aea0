/** The published JSON Schemas are exactly what the server validates with. */
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { commandJsonSchemas } from '../src/protocols/commands/json-schema.ts';
import { commandParams } from '../src/protocols/commands/schemas.ts';

describe('docs/protocol/acp.schema.json', () => {
  it('matches the zod schemas (run `npm run gen:schemas` after changing them)', () => {
    const published: unknown = JSON.parse(
      readFileSync(new URL('../docs/protocol/acp.schema.json', import.meta.url), 'utf8'),
    );
    expect(published).toEqual(commandJsonSchemas());
  });

  it('documents every method in docs/protocol/acp.md', () => {
    const doc = readFileSync(new URL('../docs/protocol/acp.md', import.meta.url), 'utf8');
    for (const method of Object.keys(commandParams))
      expect(doc, `${method} is not documented`).toContain(method);
  });
});
