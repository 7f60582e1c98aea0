/** Writes docs/protocol/acp.schema.json from the command schemas (see json-schema.ts). */
import { writeFileSync } from 'node:fs';

import { commandJsonSchemas } from '../src/protocols/commands/json-schema.ts';

const file = new URL('../docs/protocol/acp.schema.json', import.meta.url);
writeFileSync(file, `${JSON.stringify(commandJsonSchemas(), null, 2)}\n`);
console.log(`wrote ${file.pathname}`);
