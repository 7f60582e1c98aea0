/**
 * `warden policy check|show|reload`, `warden grant create|list|revoke`, `warden audit`,
 * `warden quarantine list|show` (DESIGN.md §8, docs/security.md).
 *
 * `policy check` and `show` read the policy files as they are now (what a reload would
 * activate) and decide without writing anything; `reload` goes through a running daemon (it
 * validates, persists and swaps) or, without one, validates and persists the new version so
 * the next process starts with it.
 */
import { type Decision, DECISIONS, parseDurationMs, WardenError } from '../../core/index.ts';
import { COMMAND_SCOPES_TABLE } from '../../protocols/commands/index.ts';
import {
  GrantService,
  grantStatus,
  InMemoryGrantIndex,
  PolicyDecisionPoint,
  PolicyService,
  readPolicyFiles,
} from '../../security/index.ts';
import { loadConfig } from '../config.ts';
import { openContext } from '../context.ts';
import { viaDaemonOr } from '../daemon-target.ts';
import type { GlobalOptions } from '../global-options.ts';
import { command } from '../invocation.ts';
import { osUser } from '../os-user.ts';
import { formatTime, printJson, printLine, printTable, style } from '../output.ts';

/** The policy files of the home, compiled as a reload would (POLICY_INVALID otherwise). */
function loadFromFiles(home: string): {
  pdp: PolicyDecisionPoint;
  grants: InMemoryGrantIndex;
  files: string[];
} {
  const files = readPolicyFiles(home);
  const grants = new InMemoryGrantIndex();
  const pdp = new PolicyDecisionPoint({ grants, methodScopes: COMMAND_SCOPES_TABLE });
  pdp.activate(pdp.load(files, { baseDir: home }));
  return { pdp, grants, files: Object.keys(files) };
}

export async function policyCheckCommand(
  principal: string,
  action: string,
  resource: string,
  options: GlobalOptions & { context?: string },
): Promise<number> {
  let context: Record<string, unknown> = {};
  if (options.context !== undefined) {
    try {
      const parsed: unknown = JSON.parse(options.context);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
        throw new Error('not an object');
      context = parsed as Record<string, unknown>;
    } catch {
      throw new WardenError(
        'INVALID_PARAMS',
        `--context must be a JSON object, e.g. '{"method":"GET"}' (got ${options.context})`,
      );
    }
  }
  const config = loadConfig(options);
  const { pdp, grants: index } = loadFromFiles(config.home);
  // Grants live in the database: consult them when there is one.
  const ctx = await openContext(options, { mustExist: false, intent: 'read' }).catch(() => null);
  try {
    if (ctx) {
      const grants = await ctx.store.listGrants({
        activeAt: ctx.kernel.clock.now(),
        limit: 100_000,
      });
      index.replace(grants);
    }
    const why = pdp.explain({ principal, action, resource, context });
    const explained = why.result;
    if (options.json) {
      printJson(why);
      return 0;
    }
    const mark =
      explained.decision === 'allow'
        ? style.green('✓ allow')
        : explained.decision === 'ask'
          ? style.yellow('? ask')
          : style.red('✗ deny');
    printLine(`${mark}  ${principal} ${action} ${resource}`);
    for (const reason of explained.reasons) printLine(`  ${style.dim('·')} ${reason}`);
    if (why.trust !== 'act') printLine(style.dim(`  trust level ${why.trust}`));
    if (why.grant) printLine(style.dim(`  grant ${why.grant.id}`));
    for (const m of why.matched)
      printLine(
        style.dim(
          `  matched ${m.effect}${m.ask ? ' (ask)' : ''} ${m.id} in ${m.file}${m.line === null ? '' : `:${m.line}`}`,
        ),
      );
    printLine(
      style.dim(`  policy version ${explained.policy_version.slice(0, 16)} (${explained.mode})`),
    );
    return 0;
  } finally {
    await ctx?.close();
  }
}

export function policyShowCommand(options: GlobalOptions & { cedar?: boolean }): Promise<number> {
  const config = loadConfig(options);
  const { pdp, files } = loadFromFiles(config.home);
  const prepared = pdp.policy();
  const shown = {
    version: prepared.version,
    mode: prepared.mode,
    policies: prepared.policies.length,
    warnings: prepared.warnings,
    cedar: prepared.cedar,
  };
  if (options.json) {
    printJson({ ...shown, files, ...(options.cedar ? {} : { cedar: undefined }) });
    return Promise.resolve(0);
  }
  for (const warning of shown.warnings) printLine(style.yellow(`  warning: ${warning}`));
  printLine(
    `${style.bold('policy')} ${shown.version.slice(0, 16)} ${style.dim(`(${shown.mode})`)}`,
  );
  if (files.length === 0)
    printLine(
      style.yellow(
        `  no policy files in ${config.home}: every tool call, URL, path and command is denied`,
      ),
    );
  else printLine(`  files: ${files.join(', ')}`);
  if (options.cedar) {
    printLine('');
    printLine(shown.cedar);
  } else printLine(style.dim(`  ${shown.policies} Cedar policies; show them with --cedar`));
  return Promise.resolve(0);
}

export async function policyReloadCommand(options: GlobalOptions): Promise<number> {
  const outcome = await viaDaemonOr(
    options,
    async ({ client }) => ({ ...(await client.call('policy.reload', {})), daemon: true }),
    async () => {
      const ctx = await openContext(options, { mustExist: true });
      try {
        const service = await PolicyService.open({ kernel: ctx.kernel, home: ctx.config.home });
        service.close();
        return { version: service.version, previous: '', changed: true, daemon: false };
      } finally {
        await ctx.close();
      }
    },
  );
  if (options.json) printJson(outcome);
  else
    printLine(
      `${style.green('✓')} policy ${outcome.version.slice(0, 16)} ${outcome.changed ? 'active' : 'unchanged'}${outcome.daemon ? ' in the daemon' : ''}`,
    );
  return 0;
}

export async function grantCreateCommand(
  options: GlobalOptions & {
    principal: string;
    action: string;
    resource: string;
    budget?: string;
    expires?: string;
    ask?: boolean;
    reason?: string;
  },
): Promise<number> {
  const budget = options.budget === undefined ? undefined : Number(options.budget);
  if (budget !== undefined && (!Number.isInteger(budget) || budget < 1))
    throw new WardenError(
      'INVALID_PARAMS',
      `--budget must be a positive whole number of uses (got ${options.budget})`,
    );
  let expiresInMs: number | undefined;
  if (options.expires !== undefined) {
    try {
      expiresInMs = parseDurationMs(options.expires);
    } catch {
      throw new WardenError(
        'INVALID_PARAMS',
        `--expires must be a duration such as 30m, 12h or 7d (got ${options.expires})`,
      );
    }
  }
  const ctx = await openContext(options, { mustExist: true });
  try {
    const grant = await new GrantService(ctx.kernel).create({
      principal: options.principal,
      action: options.action,
      resource: options.resource,
      ask: options.ask ?? false,
      ...(budget === undefined ? {} : { budget }),
      ...(expiresInMs === undefined ? {} : { expires_in_ms: expiresInMs }),
      ...(options.reason ? { reason: options.reason } : {}),
      created_by: `cli:${osUser()}`,
    });
    if (options.json) printJson(grant);
    else
      printLine(
        `${style.green('✓')} grant ${grant.id}: ${grant.principal} may ${grant.action} ${grant.resource}${grant.ask ? ' (each use approved by a person)' : ''}${grant.budget === null ? '' : `, ${grant.budget} uses`}${grant.expires_at === null ? '' : `, until ${formatTime(grant.expires_at)}`}`,
      );
    return 0;
  } finally {
    await ctx.close();
  }
}

export async function grantListCommand(
  options: GlobalOptions & { principal?: string; all?: boolean },
): Promise<number> {
  const ctx = await openContext(options, { mustExist: true, intent: 'read' });
  try {
    const grants = await new GrantService(ctx.kernel).list({
      ...(options.principal ? { principal: options.principal } : {}),
      activeOnly: !options.all,
    });
    const now = ctx.kernel.clock.now();
    if (options.json) {
      printJson(grants.map((g) => ({ ...g, status: grantStatus(g, now) })));
      return 0;
    }
    if (grants.length === 0) {
      printLine(
        style.dim(
          `no ${options.all ? '' : 'active '}grants — create one with: ${command('grant create --principal agent:wf/stage --action tool.call --resource tool:http.fetch')}`,
        ),
      );
      return 0;
    }
    printTable(
      ['ID', 'PRINCIPAL', 'ACTION', 'RESOURCE', 'STATUS', 'USED', 'ASK', 'EXPIRES'],
      grants.map((g) => [
        g.id,
        g.principal,
        g.action,
        g.resource,
        grantStatus(g, now),
        g.budget === null ? String(g.used) : `${g.used}/${g.budget}`,
        g.ask ? 'yes' : 'no',
        formatTime(g.expires_at),
      ]),
    );
    return 0;
  } finally {
    await ctx.close();
  }
}

export async function grantRevokeCommand(
  id: string,
  options: GlobalOptions & { reason?: string },
): Promise<number> {
  const ctx = await openContext(options, { mustExist: true });
  try {
    const grant = await new GrantService(ctx.kernel).revoke(
      id,
      `cli:${osUser()}`,
      options.reason ?? null,
    );
    if (options.json) printJson(grant);
    else printLine(`${style.green('✓')} grant ${grant.id} revoked: its next use is denied`);
    return 0;
  } finally {
    await ctx.close();
  }
}

export async function auditCommand(
  options: GlobalOptions & {
    since?: string;
    decision?: string;
    principal?: string;
    limit?: string;
    verify?: boolean;
  },
): Promise<number> {
  if (
    options.decision !== undefined &&
    !(DECISIONS as readonly string[]).includes(options.decision)
  )
    throw new WardenError(
      'INVALID_PARAMS',
      `--decision must be one of ${DECISIONS.join(', ')} (got ${options.decision})`,
    );
  const limit = options.limit === undefined ? 100 : Number(options.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
    throw new WardenError(
      'INVALID_PARAMS',
      `--limit must be a whole number from 1 to 10000 (got ${options.limit})`,
    );
  const ctx = await openContext(options, { mustExist: true, intent: 'read' });
  try {
    if (options.verify) {
      const verified = await ctx.store.verifyAudit();
      if (options.json) printJson(verified);
      else if (verified.ok)
        printLine(`${style.green('✓')} audit log intact: ${verified.count} records`);
      else
        printLine(
          `${style.red('✗')} audit log broken at seq ${verified.first_broken?.seq} (${verified.first_broken?.reason}) after ${verified.count} good records`,
        );
      return verified.ok ? 0 : 7;
    }
    const since =
      options.since === undefined ? undefined : parseSince(options.since, ctx.kernel.clock.now());
    const records = await ctx.store.readAudit({
      ...(since === undefined ? {} : { since }),
      ...(options.decision ? { decision: options.decision as Decision } : {}),
      ...(options.principal ? { principal: options.principal } : {}),
      limit,
    });
    if (options.json) {
      printJson(records);
      return 0;
    }
    if (records.length === 0) {
      printLine(style.dim('no audit records match'));
      return 0;
    }
    for (const r of records) {
      const mark =
        r.decision === 'allow'
          ? style.green('allow')
          : r.decision === 'ask'
            ? style.yellow('ask  ')
            : style.red('deny ');
      const audited =
        r.decided !== r.decision ? style.dim(` (policy said ${r.decided}; audit-only)`) : '';
      printLine(
        `${style.dim(`#${r.seq} ${formatTime(r.ts)}`)} ${mark} ${r.principal} ${r.action} ${r.resource}${audited}`,
      );
      printLine(
        style.dim(
          `    ${r.reasons.join('; ')} · policy ${r.policy_version.slice(0, 12)} · trace ${r.trace_id}`,
        ),
      );
    }
    return 0;
  } finally {
    await ctx.close();
  }
}

export async function quarantineListCommand(
  options: GlobalOptions & { kind?: string; since?: string; limit?: string },
): Promise<number> {
  const ctx = await openContext(options, { mustExist: true, intent: 'read' });
  try {
    const since =
      options.since === undefined ? undefined : parseSince(options.since, ctx.kernel.clock.now());
    const records = await ctx.store.listQuarantine({
      ...(options.kind ? { kind: options.kind } : {}),
      ...(since === undefined ? {} : { since }),
      limit: options.limit === undefined ? 100 : Number(options.limit),
    });
    if (options.json) {
      printJson(records);
      return 0;
    }
    if (records.length === 0) {
      printLine(style.dim('quarantine is empty: nothing was blocked'));
      return 0;
    }
    printTable(
      ['ID', 'WHEN', 'KIND', 'PRINCIPAL', 'ACTION', 'RESOURCE', 'WHY'],
      records.map((q) => [
        q.id,
        formatTime(q.ts),
        q.kind,
        q.principal,
        q.action,
        q.resource,
        q.reasons.join('; ').slice(0, 80),
      ]),
    );
    return 0;
  } finally {
    await ctx.close();
  }
}

export async function quarantineShowCommand(id: string, options: GlobalOptions): Promise<number> {
  const ctx = await openContext(options, { mustExist: true, intent: 'read' });
  try {
    const record = await ctx.store.getQuarantine(id);
    if (!record)
      throw new WardenError(
        'NOT_FOUND',
        `quarantine record ${id} does not exist (list them: warden quarantine list)`,
      );
    if (options.json) printJson(record);
    else {
      printLine(`${style.bold(record.id)} ${record.kind} ${style.dim(formatTime(record.ts))}`);
      printLine(`  ${record.principal} ${record.action} ${record.resource}`);
      for (const reason of record.reasons) printLine(`  ${style.dim('·')} ${reason}`);
      if (record.process_id) printLine(`  run ${record.process_id} · trace ${record.trace_id}`);
      printLine(JSON.stringify(record.context, null, 2).replace(/^/gm, '  '));
    }
    return 0;
  } finally {
    await ctx.close();
  }
}

/** `--since` as a duration back from now (`1h`, `7d`) or an ISO date. */
function parseSince(value: string, now: number): number {
  const iso = Date.parse(value);
  if (!Number.isNaN(iso) && /\d{4}-\d{2}-\d{2}/.test(value)) return iso;
  try {
    return now - parseDurationMs(value);
  } catch {
    throw new WardenError(
      'INVALID_PARAMS',
      `--since must be a duration such as 1h or 7d, or an ISO date (got ${value})`,
    );
  }
}
