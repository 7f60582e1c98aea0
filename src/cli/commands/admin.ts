/** `warden init`, `warden ledger verify`, `warden doctor`. */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
} from 'node:fs';

import { isWardenError, WardenError } from '../../core/index.ts';
import { verifyLedger } from '../../kernel/index.ts';
import { PolicyDecisionPoint, readPolicyFiles } from '../../security/index.ts';
import { openStore, redactUrl, writeAccessProblem } from '../../store/index.ts';
import { DEFAULT_CONFIG_YAML, loadConfig, resolveHome } from '../config.ts';
import { openContext, storeTargetOf } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import type { GlobalOptions } from '../global-options.ts';
import { command } from '../invocation.ts';
import { printJson, printLine, style } from '../output.ts';
import { count } from '../render.ts';

export async function initCommand(options: GlobalOptions & { force?: boolean }): Promise<number> {
  const home = resolveHome(options.home);
  // Everything is checked before anything is written: a bad config or a database that is not
  // Warden's leaves no config or token behind.
  const config = loadConfig(options);
  const homeExisted = existsSync(home);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const existed = config.storeUrl !== null || existsSync(config.databasePath);
  try {
    const store = await openStore(storeTargetOf(config));
    await store.close();
  } catch (error) {
    if (!homeExisted) rmSync(home, { recursive: true, force: true }); // only what this call made
    throw error;
  }
  const created: string[] = [];
  if (!existed) created.push(config.databasePath);
  const configFile = `${home}/config.yaml`;
  if (!existsSync(configFile)) {
    writeFileSync(configFile, DEFAULT_CONFIG_YAML, { mode: 0o600 });
    created.push(configFile);
  }
  if (!existsSync(config.tokenFile) || options.force) {
    // The token is written, never printed or logged; clients read it from the file.
    writeFileSync(config.tokenFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
    chmodSync(config.tokenFile, 0o600);
    created.push(config.tokenFile);
  }
  if (options.json)
    printJson({
      home,
      config: configFile,
      token_file: config.tokenFile,
      database: config.storeUrl ? redactUrl(config.storeUrl) : config.databasePath,
      created,
    });
  else {
    printLine(`${style.green('✓')} Warden home ${home}`);
    for (const file of created) printLine(`  created ${file}`);
    if (created.length === 0)
      printLine(
        style.dim('  already initialised; nothing changed (use --force to rotate the token)'),
      );
    printLine(`  next: ${style.bold(command('run examples/review-loop.yaml'))}`);
  }
  return 0;
}

export async function ledgerVerifyCommand(
  options: GlobalOptions & { session?: string },
): Promise<number> {
  const ctx = await openContext(options, { mustExist: true, intent: 'read' });
  try {
    let sessionId: string | undefined;
    if (options.session) {
      const s =
        (await ctx.store.getSessionByKey(options.session)) ??
        (await ctx.store.getSession(options.session));
      if (!s) throw new WardenError('NOT_FOUND', `session '${options.session}' does not exist`);
      sessionId = s.id;
    }
    const result = await verifyLedger(ctx.store, sessionId);
    if (options.json) printJson(result);
    else {
      for (const s of result.sessions) {
        if (s.ok)
          printLine(
            `${style.green('✓')} ${s.key} ${style.dim(`${s.events} events, head seq ${s.head_seq}`)}`,
          );
        else
          printLine(
            `${style.red('✗')} ${s.key} broken at seq ${s.break!.seq}: ${s.break!.reason} ${style.dim(`expected ${s.break!.expected}, found ${s.break!.actual}`)}`,
          );
      }
      printLine(
        result.ok
          ? `${style.green('ledger ok')}: ${count(result.events, 'event')} in ${count(result.sessions.length, 'session')}`
          : style.red('ledger BROKEN: the event log was altered or damaged'),
      );
    }
    return result.ok ? EXIT.OK : EXIT.LEDGER_BROKEN;
  } finally {
    await ctx.close();
  }
}

interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  /** Something to know about a passing check (printed with `!`). */
  readonly warning?: string;
  readonly fix?: string;
}

/** What to do when the database cannot be opened: by code, so a permission problem never reads as damage. */
function databaseFix(error: unknown): string {
  const code = isWardenError(error) ? error.code : 'INTERNAL';
  switch (code) {
    case 'STORE_CORRUPT':
      return 'restore the database from a backup, or move it aside to start a new one';
    case 'STORE_READ_ONLY': {
      const fix = isWardenError(error) ? error.details?.fix : undefined;
      return typeof fix === 'string'
        ? fix
        : 'make the database, its directory, -wal and -shm writable';
    }
    case 'STORE_TOO_NEW':
      return 'upgrade Warden (nothing was changed)';
    case 'MIGRATION_MISMATCH':
      return 'use the Warden build that created the database, or restore it from a backup';
    case 'STORE_BUSY':
      return 'retry; if it persists, find the process holding the database locked';
    case 'STORE_UNAVAILABLE':
      return 'check that the PostgreSQL server in the store URL is up and reachable, then retry';
    case 'CONFIG_INVALID':
      return 'point --home, --db or WARDEN_DB at a database file this user can read';
    default:
      return `run ${command('doctor')} again; if it repeats, report a bug with the message above`;
  }
}

export async function doctorCommand(options: GlobalOptions): Promise<number> {
  const checks: Check[] = [];
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const nodeOk = major > 22 || (major === 22 && minor >= 12);
  checks.push({
    name: 'node',
    ok: nodeOk,
    detail: `v${process.versions.node}`,
    ...(nodeOk ? {} : { fix: 'use Node 22.12 or newer (source scripts/use-node.sh)' }),
  });
  let config;
  try {
    config = loadConfig(options);
    checks.push({
      name: 'config',
      ok: true,
      detail: existsSync(config.configFile)
        ? config.configFile
        : `${config.configFile} (not present; defaults in use)`,
    });
  } catch (error) {
    checks.push({
      name: 'config',
      ok: false,
      detail: (error as Error).message,
      fix: 'fix the key named above',
    });
  }
  if (config) {
    if (existsSync(config.tokenFile)) {
      const mode = statSync(config.tokenFile).mode & 0o777;
      checks.push({
        name: 'auth token',
        ok: mode === 0o600,
        detail: `${config.tokenFile} mode ${mode.toString(8)}`,
        ...(mode === 0o600 ? {} : { fix: `chmod 600 ${config.tokenFile}` }),
      });
    } else
      checks.push({
        name: 'auth token',
        ok: false,
        detail: 'missing',
        fix: `run ${command('init')}`,
      });
    checks.push(policyCheck(config.home));
    const where = config.storeUrl ? redactUrl(config.storeUrl) : config.databasePath;
    if (config.storeUrl !== null || existsSync(config.databasePath)) {
      try {
        const ctx = await openContext(options, { mustExist: true, intent: 'read' });
        try {
          const health = await ctx.store.health(true);
          // Healthy but not writable here: say so and how to fix it, without failing the check.
          const readOnly = ctx.store.readOnly
            ? (writeAccessProblem(config.databasePath) ?? {
                reason: 'it was opened read-only',
                fix: `check the owner and mode of ${config.databasePath}, its -wal and -shm files and its directory`,
              })
            : null;
          checks.push({
            name: 'database',
            ok: health.ok,
            detail: `${where} schema v${health.schemaVersion}, ${health.durability}, ${health.detail}${readOnly ? ', read-only' : ''}`,
            ...(readOnly
              ? {
                  warning: `${readOnly.reason}: commands that read work, commands that write fail with STORE_READ_ONLY`,
                  fix: readOnly.fix,
                }
              : {}),
          });
          const ledger = await verifyLedger(ctx.store);
          checks.push({
            name: 'ledger',
            ok: ledger.ok,
            detail: `${count(ledger.events, 'event')} in ${count(ledger.sessions.length, 'session')}`,
            ...(ledger.ok
              ? {}
              : { fix: `run ${command('ledger verify')} for the first broken link` }),
          });
          const status = await ctx.kernel.status();
          checks.push({
            name: 'runs',
            ok: true,
            detail: `${JSON.stringify(status.processes)}; pending interrupts ${status.pending_interrupts}; dead tasks ${status.dlq_size}`,
          });
        } finally {
          await ctx.close();
        }
      } catch (error) {
        checks.push({
          name: 'database',
          ok: false,
          detail: isWardenError(error) ? `[${error.code}] ${error.message}` : String(error),
          fix: databaseFix(error),
        });
      }
      if (!config.storeUrl) {
        const fs = statfsSync(config.home);
        const freeMb = Math.floor((fs.bavail * fs.bsize) / 1_048_576);
        checks.push({
          name: 'disk',
          ok: freeMb > 100,
          detail: `${freeMb} MiB free`,
          ...(freeMb > 100 ? {} : { fix: 'free disk space: SQLite needs room for its WAL' }),
        });
      }
    } else
      checks.push({
        name: 'database',
        ok: true,
        detail: `${config.databasePath} (not created yet; ${command('init')} or ${command('run')} creates it)`,
      });
    const model = config.model;
    const openaiReady = Boolean(process.env.OPENAI_BASE_URL || process.env.OPENAI_API_KEY);
    checks.push({
      name: 'model',
      ok: !model.startsWith('openai') || openaiReady,
      detail: `${model}${model.startsWith('openai') ? (openaiReady ? ` via ${process.env.OPENAI_BASE_URL ?? 'api.openai.com'}` : '') : ''}`,
      ...(model.startsWith('openai') && !openaiReady
        ? { fix: 'set OPENAI_BASE_URL or OPENAI_API_KEY' }
        : {}),
    });
  }
  const ok = checks.every((c) => c.ok);
  if (options.json) printJson({ ok, checks });
  else {
    for (const c of checks) {
      const mark = !c.ok ? style.red('✗') : c.warning ? style.yellow('!') : style.green('✓');
      printLine(
        `${mark} ${c.name.padEnd(11)} ${c.detail}${c.warning ? `\n  ${style.yellow('warning:')} ${c.warning}` : ''}${c.fix ? `\n  ${style.yellow('fix:')} ${c.fix}` : ''}`,
      );
    }
  }
  return ok ? EXIT.OK : EXIT.ERROR;
}

/** The policy files compile (else the daemon refuses to start), and what they make. */
function policyCheck(home: string): Check {
  try {
    const files = readPolicyFiles(home);
    const pdp = new PolicyDecisionPoint();
    const prepared = pdp.load(files, { baseDir: home });
    const names = Object.keys(files);
    return {
      name: 'policy',
      ok: true,
      detail:
        names.length === 0
          ? 'no policy files: every tool call, URL, path and command is denied (docs/policy.md)'
          : `${names.join(', ')} → version ${prepared.version.slice(0, 16)} (${prepared.mode})${prepared.warnings.length ? `; ${prepared.warnings.length} warning(s): warden policy show` : ''}`,
    };
  } catch (error) {
    return {
      name: 'policy',
      ok: false,
      detail: (error as Error).message,
      fix: 'fix the policy file and line named above (docs/policy.md)',
    };
  }
}
