/**
 * A small MCP server on stdio for tests: `node test/helpers/mcp-stdio-server.ts` (Node strips
 * the types). Its tools are in mcp-test-tools.ts. With MCP_TEST_EXIT_AT_START=<code> it writes a
 * line to stderr (ending with MCP_TEST_SAY, if set) and exits with that code before speaking MCP
 * (to test start-up failures and that secrets are masked in error messages).
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';

import { registerTestTools } from './mcp-test-tools.ts';

const exitAtStart = process.env.MCP_TEST_EXIT_AT_START;
if (exitAtStart !== undefined) {
  const say = process.env.MCP_TEST_SAY ?? '';
  process.stderr.write(`test server: refusing to start (exit ${exitAtStart}) ${say}\n`);
  process.exit(Number(exitAtStart));
}

const server = new McpServer({ name: 'warden-test-stdio', version: '1.0.0' });
registerTestTools(server);
process.stderr.write(`test server: ready (pid ${process.pid})\n`);
await server.connect(new StdioServerTransport());
