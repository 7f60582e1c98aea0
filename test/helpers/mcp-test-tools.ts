/**
 * The tools of the test MCP servers (stdio: mcp-stdio-server.ts, HTTP: mcp-http-server.ts).
 * Plain TypeScript that Node runs with its type stripping: no enums, no parameter properties.
 *
 * - `echo {text}`: the text back;
 * - `add {a, b}` (readOnlyHint): `{sum}` as structured content;
 * - `write_note {dir, name, text}`: writes `<dir>/<name>` and counts its invocations in
 *   `<dir>/.invocations` (a real side effect, for effect and policy tests);
 * - `fail {}`: an `isError` result;
 * - `slow {ms, dir?}`: waits `ms`, or until the call is cancelled; with `dir`, writes
 *   `slow-started`, then `slow-done` or `slow-cancelled` there;
 * - `env_probe {}`: the names of the environment variables the server sees;
 * - `env_get {name}`: one variable's value (to check secrets arrive);
 * - `big {bytes}`: that many bytes of text; `picture {}`: a small PNG;
 * - `odd.name` and `odd_name`: one name to sanitise, one that collides with it.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

const text = (value: string) => ({ content: [{ type: 'text' as const, text: value }] });

export function registerTestTools(server: McpServer): void {
  server.registerTool(
    'echo',
    { description: 'Returns the text it is given.', inputSchema: { text: z.string() } },
    ({ text: value }) => text(value),
  );

  server.registerTool(
    'add',
    {
      description: 'Adds two numbers.',
      inputSchema: { a: z.number(), b: z.number() },
      outputSchema: { sum: z.number() },
      annotations: { readOnlyHint: true },
    },
    ({ a, b }) => ({
      content: [{ type: 'text', text: String(a + b) }],
      structuredContent: { sum: a + b },
    }),
  );

  server.registerTool(
    'write_note',
    {
      description: 'Writes a note file into a directory.',
      inputSchema: { dir: z.string(), name: z.string(), text: z.string() },
      annotations: { readOnlyHint: false, destructiveHint: false },
    },
    ({ dir, name, text: body }) => {
      appendFileSync(join(dir, '.invocations'), 'x');
      writeFileSync(join(dir, name), body);
      return text(`wrote ${name}`);
    },
  );

  server.registerTool('fail', { description: 'Always fails.', inputSchema: {} }, () => ({
    content: [{ type: 'text', text: 'it failed on purpose' }],
    isError: true,
  }));

  server.registerTool(
    'slow',
    {
      description: 'Waits, and stops early when the call is cancelled.',
      inputSchema: { ms: z.number().int().nonnegative(), dir: z.string().optional() },
    },
    async ({ ms, dir }, extra) => {
      const mark = (file: string) => {
        if (dir !== undefined) writeFileSync(join(dir, file), String(process.pid));
      };
      mark('slow-started');
      const cancelled = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), ms);
        extra.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      mark(cancelled ? 'slow-cancelled' : 'slow-done');
      return text(cancelled ? 'cancelled' : `waited ${ms} ms`);
    },
  );

  server.registerTool(
    'env_probe',
    {
      description: 'Lists the names of the environment variables the server sees.',
      inputSchema: {},
      outputSchema: { names: z.array(z.string()) },
      annotations: { readOnlyHint: true },
    },
    () => {
      const names = Object.keys(process.env).sort();
      return { content: [{ type: 'text', text: names.join(',') }], structuredContent: { names } };
    },
  );

  server.registerTool(
    'env_get',
    {
      description: 'Returns the value of one environment variable.',
      inputSchema: { name: z.string() },
      annotations: { readOnlyHint: true },
    },
    ({ name }) => text(process.env[name] ?? '(unset)'),
  );

  server.registerTool(
    'big',
    { description: 'Returns that many bytes of text.', inputSchema: { bytes: z.number().int() } },
    ({ bytes }) => text('x'.repeat(bytes)),
  );

  server.registerTool(
    'picture',
    { description: 'Returns a small image.', inputSchema: {} },
    () => ({
      content: [
        { type: 'text', text: 'a picture:' },
        { type: 'image', data: Buffer.alloc(300, 1).toString('base64'), mimeType: 'image/png' },
      ],
    }),
  );

  for (const name of ['odd.name', 'odd_name']) {
    server.registerTool(name, { description: `The tool ${name}.`, inputSchema: {} }, () =>
      text(name),
    );
  }
}

/** How many times `write_note` ran with this `dir`. */
export function noteInvocations(dir: string): number {
  try {
    return readFileSync(join(dir, '.invocations'), 'utf8').length;
  } catch {
    return 0;
  }
}
