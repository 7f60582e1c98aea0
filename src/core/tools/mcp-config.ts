/**
 * An MCP server as configured for an agent (docs/mcp.md): a stdio server Warden starts as a child
 * process (`command`), or a streamable HTTP server it connects to (`url`). Which one is decided by
 * the presence of `command` or `url`; the parsed value carries it as `transport` so consumers can
 * switch on it. Secrets are given by reference (`{secret: NAME}`) and resolved only when the
 * server is started, so no secret value is ever written in a workflow file. Unknown keys are
 * errors: a typo must never be silently ignored. Pure: no I/O.
 */
import { z } from 'zod';

import { DURATION_PATTERN, parseDurationMs } from '../workflow/duration.ts';

/** The default timeout of one tool call, and of a stdio server's start and handshake. */
export const MCP_DEFAULT_TIMEOUT_MS = 30_000;
/** The longest timeout accepted (1 hour): a longer wait is a hung server, not a slow one. */
export const MCP_MAX_TIMEOUT_MS = 3_600_000;

export const MCP_SERVER_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;

const serverName = z
  .string()
  .regex(
    MCP_SERVER_NAME_PATTERN,
    'expected a server name of lower-case letters, digits, _ and - (max 32), starting with a letter',
  );

/** `{secret: NAME}`: the value of the secret NAME (from the environment or the secrets file). */
export const mcpSecretRefSchema = z.strictObject({
  secret: z
    .string()
    .regex(
      /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/,
      'expected a secret name of letters, digits, _ . - (max 128), starting with a letter or _',
    ),
});
export type McpSecretRef = z.infer<typeof mcpSecretRefSchema>;

/** An `env` or `headers` value: a literal string, or a secret by reference. */
export type McpConfigValue = string | McpSecretRef;

const timeoutMs = z
  .union([
    z.number().int().positive(),
    z.string().regex(DURATION_PATTERN, 'expected a duration such as 500ms, 30s or 2m'),
  ])
  .transform((v) => parseDurationMs(v))
  .refine((ms) => ms > 0 && ms <= MCP_MAX_TIMEOUT_MS, {
    message: `expected a duration above 0 and at most ${MCP_MAX_TIMEOUT_MS} ms (1h)`,
  })
  .default(MCP_DEFAULT_TIMEOUT_MS);

// zod reports a bad record key as "Invalid key in record"; these say what a key must look like.
const envKeyError = {
  error: (issue: { code?: string }) =>
    issue.code === 'invalid_key'
      ? 'expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*)'
      : undefined,
};
const headerKeyError = {
  error: (issue: { code?: string }) =>
    issue.code === 'invalid_key' ? 'expected an HTTP header name' : undefined,
};
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/);
const envValue = z.union([
  z.string().refine((v) => !v.includes('\0'), 'contains a NUL byte'),
  mcpSecretRefSchema,
]);

// RFC 9110 token characters; values must not break the header line.
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/);
const headerValue = z.union([
  z.string().regex(/^[^\r\n\0]*$/, 'must not contain CR, LF or NUL'),
  mcpSecretRefSchema,
]);

/** A stdio server: Warden starts `command` with `args` and only `env` (plus PATH). */
export const mcpStdioServerSchema = z.strictObject({
  transport: z.literal('stdio'),
  name: serverName,
  command: z.string().min(1, 'expected the command that starts the server'),
  args: z.array(z.string()).default([]),
  env: z.record(envName, envValue, envKeyError).default({}),
  /** The working directory; the worker's own when absent. */
  cwd: z.string().min(1).optional(),
  /** Per tool call, in ms (or a duration string). @default 30 s */
  timeout: timeoutMs,
  /** For the process to start and answer the MCP handshake. @default 30 s */
  startup_timeout: timeoutMs,
});

/** A streamable HTTP server at `url`, sent `headers` with every request. */
export const mcpHttpServerSchema = z.strictObject({
  transport: z.literal('http'),
  name: serverName,
  url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).refine((u) => {
    const parsed = new URL(u);
    return parsed.username === '' && parsed.password === '';
  }, 'must not contain credentials: send them in `headers` with a {secret: NAME} value'),
  headers: z.record(headerName, headerValue, headerKeyError).default({}),
  /** Per request (the handshake and each tool call), in ms (or a duration string). @default 30 s */
  timeout: timeoutMs,
});

const parsedServer = z.discriminatedUnion('transport', [mcpStdioServerSchema, mcpHttpServerSchema]);

/**
 * One MCP server. The transport follows from the keys: `command` means stdio, `url` means
 * streamable HTTP (an explicit `transport: stdio | http` is accepted too); giving both or neither
 * is an error that says so.
 */
export const mcpServerSchema = z.preprocess((value, ctx) => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  if ('transport' in value) return value;
  const stdio = 'command' in value;
  const http = 'url' in value;
  if (stdio === http) {
    ctx.issues.push({
      code: 'custom',
      input: value,
      message: stdio
        ? 'give either `command` (a stdio server) or `url` (a streamable HTTP server), not both'
        : 'expected `command` (a stdio server Warden starts) or `url` (a streamable HTTP server)',
    });
    return value;
  }
  return { ...value, transport: stdio ? 'stdio' : 'http' };
}, parsedServer);

export type McpStdioServerConfig = z.output<typeof mcpStdioServerSchema>;
export type McpHttpServerConfig = z.output<typeof mcpHttpServerSchema>;
/** A parsed MCP server entry: defaults applied, durations in ms. */
export type McpServerConfig = z.output<typeof mcpServerSchema>;

/** An agent's `mcp:` list: server names must be unique (they name the tools). */
export const mcpServerListSchema = z.array(mcpServerSchema).superRefine((servers, ctx) => {
  const seen = new Set<string>();
  servers.forEach((server, index) => {
    if (seen.has(server.name)) {
      ctx.addIssue({
        code: 'custom',
        path: [index, 'name'],
        message: `MCP server name '${server.name}' is used twice; give each server its own name`,
      });
    }
    seen.add(server.name);
  });
});
