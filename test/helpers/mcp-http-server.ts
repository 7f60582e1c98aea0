/**
 * A small MCP server over streamable HTTP for tests, on 127.0.0.1 and a free port, with the tools
 * of mcp-test-tools.ts. Every request must carry `Authorization: Bearer <token>` (401 otherwise),
 * so tests can check that configured headers (and secrets in them) are sent.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

import { registerTestTools } from './mcp-test-tools.ts';

export interface McpHttpTestServer {
  /** `http://127.0.0.1:<port>/mcp` */
  readonly url: string;
  readonly token: string;
  /** Requests refused for a missing or wrong bearer token. */
  readonly unauthorized: () => number;
  /** Open MCP sessions. */
  readonly sessions: () => number;
  /** Forgets every session, as a restarted server would (their next request gets a 404). */
  dropSessions(): Promise<void>;
  close(): Promise<void>;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks).toString('utf8');
  return body === '' ? undefined : (JSON.parse(body) as unknown);
}

export async function startMcpHttpServer(
  token = `tok-${randomUUID()}`,
): Promise<McpHttpTestServer> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  let unauthorized = 0;

  const http = createServer((req, res) => {
    const handle = async () => {
      if (req.headers.authorization !== `Bearer ${token}`) {
        unauthorized += 1;
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
        return;
      }
      if (!req.url?.startsWith('/mcp')) {
        res.writeHead(404).end();
        return;
      }
      const sessionId = req.headers['mcp-session-id'];
      const body = req.method === 'POST' ? await readJson(req) : undefined;
      let transport = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
      if (!transport) {
        if (sessionId !== undefined || !isInitializeRequest(body)) {
          res
            .writeHead(sessionId === undefined ? 400 : 404, { 'content-type': 'application/json' })
            .end('{"jsonrpc":"2.0","error":{"code":-32000,"message":"no such session"},"id":null}');
          return;
        }
        const fresh = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => {
            transports.set(id, fresh);
          },
        });
        fresh.onclose = () => {
          if (fresh.sessionId !== undefined) transports.delete(fresh.sessionId);
        };
        const server = new McpServer({ name: 'warden-test-http', version: '1.0.0' });
        registerTestTools(server);
        await server.connect(fresh);
        transport = fresh;
      }
      await transport.handleRequest(req, res, body);
    };
    handle().catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;

  const dropSessions = async () => {
    const open = [...transports.values()];
    transports.clear();
    await Promise.all(open.map((t) => t.close()));
  };
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    token,
    unauthorized: () => unauthorized,
    sessions: () => transports.size,
    dropSessions,
    close: async () => {
      await dropSessions();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
