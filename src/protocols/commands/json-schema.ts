/**
 * The JSON Schemas of every command's params, generated from the zod schemas the server
 * validates with: docs/protocol/acp.schema.json is this, written by `npm run gen:schemas` and
 * checked by a test, so the published schema cannot drift from what the server accepts.
 */
import { z } from 'zod';

import { COMMAND_SCOPES, type CommandName, commandParams } from './schemas.ts';

export function commandJsonSchemas(): Record<string, unknown> {
  const methods: Record<string, unknown> = {};
  for (const name of Object.keys(commandParams).sort() as CommandName[]) {
    methods[name] = {
      scope: COMMAND_SCOPES[name],
      params: z.toJSONSchema(commandParams[name], { io: 'input', unrepresentable: 'any' }),
    };
  }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Warden ACP method parameters (protocol 1)',
    description:
      'Generated from src/protocols/commands/schemas.ts by `npm run gen:schemas`; see docs/protocol/acp.md.',
    methods,
  };
}
