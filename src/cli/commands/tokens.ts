/** `warden token create|list|revoke`: API tokens for the daemon (src/security/tokens.ts). */
import { parseDurationMs, parseScopes, WardenError } from '../../core/index.ts';
import { type TokenInfo, TokenService } from '../../security/index.ts';
import { openContext, openContextIfExists } from '../context.ts';
import type { GlobalOptions } from '../global-options.ts';
import { command } from '../invocation.ts';
import { formatTime, printJson, printLine, printTable, style } from '../output.ts';

export async function tokenCreateCommand(
  options: GlobalOptions & { name: string; scopes: string; expires?: string },
): Promise<number> {
  // Checked before the database is opened: a typo creates nothing.
  const scopes = parseScopes(options.scopes);
  const expiresInMs = options.expires === undefined ? undefined : parseExpiry(options.expires);
  const ctx = await openContext(options);
  try {
    const tokens = new TokenService({ store: ctx.store, clock: ctx.kernel.clock });
    const created = await tokens.create({
      name: options.name,
      scopes,
      ...(expiresInMs === undefined ? {} : { expiresInMs }),
    });
    if (options.json)
      printJson({
        id: created.id,
        token: created.token,
        scopes: created.scopes,
        expires_at: created.expires_at,
      });
    else {
      const expiry =
        created.expires_at === null ? 'never expires' : `expires ${formatTime(created.expires_at)}`;
      printLine(
        `${style.green('✓')} token ${created.id} '${created.name}' (${created.scopes.join(', ')}), ${expiry}`,
      );
      printLine(created.token);
      printLine(style.dim('  shown only this once: store it now (Warden keeps only its hash)'));
    }
    return 0;
  } finally {
    await ctx.close();
  }
}

export async function tokenListCommand(options: GlobalOptions): Promise<number> {
  const ctx = await openContextIfExists(options); // no database yet: no tokens, nothing created
  try {
    const list = ctx ? await new TokenService({ store: ctx.store }).list() : [];
    const now = ctx?.kernel.clock.now() ?? Date.now();
    if (options.json) {
      printJson(list.map((t) => ({ ...t, status: status(t, now) })));
      return 0;
    }
    if (list.length === 0) {
      printLine(
        style.dim(
          `no API tokens — create one with: ${command('token create --name ci --scopes read')}`,
        ),
      );
      return 0;
    }
    printTable(
      ['ID', 'NAME', 'SCOPES', 'STATUS', 'CREATED', 'EXPIRES', 'LAST USED'],
      list.map((t) => [
        t.id,
        t.name,
        t.scopes.join(','),
        status(t, now),
        formatTime(t.created_at),
        formatTime(t.expires_at),
        formatTime(t.last_used_at),
      ]),
    );
    return 0;
  } finally {
    await ctx?.close();
  }
}

export async function tokenRevokeCommand(id: string, options: GlobalOptions): Promise<number> {
  const ctx = await openContext(options, { mustExist: true });
  try {
    await new TokenService({ store: ctx.store, clock: ctx.kernel.clock }).revoke(id);
    if (options.json) printJson({ id, revoked: true });
    else printLine(`${style.green('✓')} token ${id} revoked`);
    return 0;
  } finally {
    await ctx.close();
  }
}

function status(token: TokenInfo, now: number): 'active' | 'revoked' | 'expired' {
  if (token.revoked_at !== null) return 'revoked';
  if (token.expires_at !== null && token.expires_at <= now) return 'expired';
  return 'active';
}

function parseExpiry(text: string): number {
  const ms = parseDurationMs(text);
  if (!Number.isSafeInteger(ms) || ms <= 0)
    throw new WardenError(
      'INVALID_PARAMS',
      `--expires: expected a duration such as 30d, 12h or 90m (got '${text}')`,
      { details: { flag: '--expires', value: text } },
    );
  return ms;
}
