/**
 * Writes the published JSON Schemas: docs/protocol/acp.schema.json from the command schemas
 * (see json-schema.ts), and docs/schemas/*.json (plan v1, run.json, hooks.json, manifest.json)
 * from the zod schemas `warden plan --check` and `warden exec` use.
 */
import { mkdirSync, writeFileSync } from 'node:fs';

import { planJsonSchemas } from '../src/core/plan/index.ts';
import { commandJsonSchemas } from '../src/protocols/commands/json-schema.ts';

const file = new URL('../docs/protocol/acp.schema.json', import.meta.url);
writeFileSync(file, `${JSON.stringify(commandJsonSchemas(), null, 2)}\n`);
console.log(`wrote ${file.pathname}`);

const dir = new URL('../docs/schemas/', import.meta.url);
mkdirSync(dir, { recursive: true });
for (const [name, schema] of Object.entries(planJsonSchemas())) {
  const out = new URL(name, dir);
  writeFileSync(out, `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`wrote ${out.pathname}`);
}
