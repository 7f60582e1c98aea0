/**
 * The `warden` command tree: every command, its options, help text and examples. Kept apart from
 * main.ts (which runs it) so tests and `warden completion` can read the tree without running it.
 */
import { Command, Option } from 'commander';

import { coerceError, WardenError } from '../core/index.ts';
import { doctorCommand, initCommand, ledgerVerifyCommand } from './commands/admin.ts';
import { backupCommand, restoreCommand } from './commands/backup.ts';
import { answerResponse, cancelCommand, resolveCommand } from './commands/interrupts.ts';
import { migrateCommand } from './commands/migrate.ts';
import { execCommand, type ExecOptions, planCommand } from './commands/plans.ts';
import { eventsCommand, inspectCommand, interruptsCommand, psCommand } from './commands/query.ts';
import { resumeCommand, runCommand, type RunOptions } from './commands/run.ts';
import {
  auditCommand,
  grantCreateCommand,
  grantListCommand,
  grantRevokeCommand,
  policyCheckCommand,
  policyReloadCommand,
  policyShowCommand,
  quarantineListCommand,
  quarantineShowCommand,
} from './commands/security.ts';
import { serveCommand } from './commands/serve.ts';
import { dlqCommand, submitCommand, tasksCommand } from './commands/tasks.ts';
import { tokenCreateCommand, tokenListCommand, tokenRevokeCommand } from './commands/tokens.ts';
import { validateCommand } from './commands/validate.ts';
import { watchCommand } from './commands/watch.ts';
import { completionCommand } from './completion.ts';
import { exitCodeFor } from './exit-codes.ts';
import type { GlobalOptions } from './global-options.ts';
import { printError } from './output.ts';
import { VERSION } from './version.ts';

export { VERSION };

type Action = (...args: never[]) => Promise<number>;

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('warden')
    .description('Warden: a durable, policy-guarded kernel for AI agents')
    .version(VERSION)
    .option('--home <dir>', 'Warden home directory (env WARDEN_HOME, default ~/.warden)')
    .option(
      '--db <file|url>',
      'database file or postgres:// URL (env WARDEN_DB, default <home>/warden.db)',
    )
    .addOption(
      new Option('--durability <mode>', 'fast or strict (env WARDEN_DURABILITY)').choices([
        'fast',
        'strict',
      ]),
    )
    .option('--json', 'machine-readable JSON output')
    .option(
      '--url <ws-url>',
      "use the daemon at this URL (env WARDEN_URL; token from WARDEN_TOKEN or the home's auth.token)",
    )
    .option('--direct', 'use the database, never a daemon (env WARDEN_DIRECT=1)')
    .showHelpAfterError('(run warden --help for usage)')
    .configureHelp({ showGlobalOptions: true })
    .exitOverride();

  const wrap =
    <A extends Action>(fn: A) =>
    async (...args: unknown[]): Promise<void> => {
      const command = args.at(-1) as Command;
      const options = command.optsWithGlobals<GlobalOptions>();
      const positional = args.slice(0, -2);
      try {
        setExit(
          await (fn as unknown as (...a: unknown[]) => Promise<number>)(...positional, options),
        );
      } catch (error) {
        const e = coerceError(error);
        printError(e, options.json ?? false);
        setExit(exitCodeFor(e.code));
      }
    };

  program
    .command('init')
    .description('create the Warden home: config.yaml, a 0600 auth token and the database')
    .option('--force', 'rotate the auth token')
    .action(wrap(initCommand));

  const runCmd = program
    .command('run [workflow]')
    .description(
      "run a workflow file durably, showing each stage; asks at the terminal when the run needs a person (with --plan: warden exec, the NOA kit's run)",
    )
    .option('--input <json>', "the run's input as JSON, or @file.json")
    .option('--session <key>', 'session key', 'main')
    .addOption(
      new Option('--priority <priority>', 'scheduling priority').choices([
        'realtime',
        'high',
        'normal',
        'low',
        'idle',
      ]),
    )
    .option(
      '--interactive',
      'ask for approvals and answers on stdin even when it is not a terminal',
    )
    .option(
      '--no-interactive',
      'never ask: leave the run waiting and print how to answer (exit code 4)',
    )
    .option('--concurrency <n>', 'steps to run at once')
    .option(
      '--allow-unreachable',
      'run even when some stages can never be reached (a warning on stderr instead of an error)',
    );
  addExecOptions(runCmd);
  runCmd.action(
    wrap((workflow: string | undefined, options: RunOptions & ExecOptions) => {
      if (options.plan !== undefined) return execCommand(options);
      if (workflow === undefined)
        throw new WardenError(
          'INVALID_PARAMS',
          "missing the workflow: warden run <workflow.yaml>, or warden run --plan <plan.json> (the NOA kit's run)",
        );
      return runCommand(workflow, options);
    }),
  );

  program
    .command('plan')
    .description(
      "turn the execution-queue section of a source-of-truth markdown document into plan JSON v1 (the NOA task kit's plan, byte for byte)",
    )
    .option('--sot <path>', 'the source-of-truth markdown document')
    .option('--out <path>', 'where to write the plan (its directory is created)')
    .option('--check <plan.json>', 'validate a plan file against the published schema instead')
    .option('--hooks <file>', 'with --check: validate this hooks.json too')
    .option('--manifest <file>', 'with --check: validate this manifest.json too')
    .action(wrap(planCommand));

  addExecOptions(
    program
      .command('exec')
      .description(
        "run every task of a plan on the durable queue, in parallel, with evidence files and run.json (the NOA task kit's run); resumable",
      ),
  ).action(wrap(execCommand));

  program
    .command('validate <workflow...>')
    .description(
      'check workflow files without running them (opens no database; works without a Warden home)',
    )
    .option(
      '--allow-unreachable',
      'report stages that can never be reached as warnings instead of errors',
    )
    .addHelpText(
      'after',
      [
        '',
        'Prints "✓ <file>: workflow \'<name>\', N stages" for a good file, or every problem as',
        '<file>: <path>: <message>. Exit code 0 when every file is valid, 2 when one is not.',
      ].join('\n'),
    )
    .action(wrap(validateCommand));

  program
    .command('resume [pid]')
    .description(
      'continue a run (or every unfinished run) after a crash, a kill or an answered interrupt',
    )
    .option(
      '--interactive',
      'ask for approvals and answers on stdin even when it is not a terminal',
    )
    .option(
      '--no-interactive',
      'never ask: stop at interrupts and print how to answer (exit code 4)',
    )
    .option('--concurrency <n>', 'steps to run at once')
    .action(wrap(resumeCommand));

  program
    .command('watch <pid>')
    .description("follow one run's progress live from another terminal, until it ends (only reads)")
    .action(wrap(watchCommand));

  program
    .command('ps')
    .description('list runs')
    .option('--state <states>', 'comma-separated states to show')
    .option('--limit <n>', 'most recent N', '50')
    .action(wrap(psCommand));
  program
    .command('inspect <pid>')
    .description('show a run: state, budget, steps, outputs, tasks and interrupts')
    .action(wrap(inspectCommand));
  program
    .command('events')
    .description("print a session's event log (hash-chained, contiguous seq)")
    .option('--session <key>', 'session key or id', 'main')
    .option('--process <pid>', "only this run's events (in its session)")
    .option('--from <seq>', 'start at this sequence number')
    .option('--limit <n>', 'print at most N events', '1000')
    .option('--follow', 'keep printing new events as they commit')
    .action(wrap(eventsCommand));
  program
    .command('interrupts')
    .description('list pending interrupts (questions to a person)')
    .option('--all', 'include resolved, expired and cancelled')
    .action(wrap(interruptsCommand));
  for (const [verb, approved] of [
    ['approve', true],
    ['deny', false],
  ] as const) {
    program
      .command(`${verb} <id>`)
      .description(`${verb} a pending confirmation, review or budget request`)
      .option('--note <text>', 'a note stored with the answer')
      .action(
        wrap((id: string, options: GlobalOptions & { note?: string }) =>
          resolveCommand(
            id,
            { approved, ...(options.note ? { text: options.note } : {}) },
            options,
          ),
        ),
      );
  }
  program
    .command('answer <id> <text...>')
    .description('answer a pending clarification')
    .action(
      wrap((id: string, words: string[], options: GlobalOptions) =>
        resolveCommand(id, answerResponse(words), options),
      ),
    );
  program
    .command('cancel <pid>')
    .description('cancel a run; its running step is told through its AbortSignal')
    .option('--reason <text>', 'why')
    .action(wrap(cancelCommand));
  program
    .command('tasks')
    .description('list tasks in the durable queue')
    .option(
      '--state <states>',
      'comma-separated: queued, running, succeeded, failed, dead, canceled',
    )
    .option('--lane <lane>', 'only this lane')
    .option('--limit <n>', 'at most N', '100')
    .action(wrap(tasksCommand));
  program
    .command('dlq [action] [id]')
    .description('dead letters: list (default), show <id>, redrive <id|--all>, purge <id|--all>')
    .option('--lane <lane>', 'only this lane')
    .option('--all', 'redrive or purge every dead task (of --lane)')
    .option('--limit <n>', 'at most N', '100')
    .action(wrap(dlqCommand));
  program
    .command('submit <job>')
    .description('submit a job to the durable queue (workers registered for <job> run it)')
    .option('--payload <json>', 'the payload as JSON, or @file.json')
    .option('--lane <lane>', 'lane', 'default')
    .addOption(
      new Option('--priority <priority>', 'priority').choices([
        'realtime',
        'high',
        'normal',
        'low',
        'idle',
      ]),
    )
    .option('--delay <ms>', 'run no earlier than this many milliseconds from now')
    .option('--attempts <n>', 'maximum attempts (default 5)')
    .option('--key <key>', 'idempotency key: the same key within 24 h returns the existing task')
    .option('--session <key>', 'session whose event log records the task', 'system')
    .action(wrap(submitCommand));
  const ledger = program.command('ledger').description('the hash-chained event log');
  ledger
    .command('verify')
    .description('verify every session (or one) and report the first broken link')
    .option('--session <key>', 'only this session')
    .action(wrap(ledgerVerifyCommand));
  const token = program
    .command('token')
    .description('API tokens for the daemon: create (shown once), list, revoke');
  token
    .command('create')
    .description('create an API token and print it once (only its hash is stored)')
    .requiredOption('--name <name>', 'a label for the token')
    .requiredOption('--scopes <scopes>', 'comma-separated: read, write, admin, approvals')
    .option('--expires <duration>', 'lifetime, e.g. 30d, 12h (default: never expires)')
    .action(wrap(tokenCreateCommand));
  token
    .command('list')
    .description('list API tokens: scopes, status, expiry, last use (never the secrets)')
    .action(wrap(tokenListCommand));
  token
    .command('revoke <id>')
    .description('revoke an API token; it is refused from then on')
    .action(wrap(tokenRevokeCommand));
  const policy = program
    .command('policy')
    .description('the policy decision point: check a decision, show or reload the policy');
  policy
    .command('check <principal> <action> <resource>')
    .description('explain what the policy files decide for a request (nothing is written)')
    .option('--context <json>', 'request context as a JSON object, e.g. \'{"method":"GET"}\'')
    .action(wrap(policyCheckCommand));
  policy
    .command('show')
    .description('show the policy version the files make, its mode and files')
    .option('--cedar', 'print the compiled Cedar policies')
    .action(wrap(policyShowCommand));
  policy
    .command('reload')
    .description('validate the policy files and activate them (in the daemon, if one runs)')
    .action(wrap(policyReloadCommand));
  const grant = program
    .command('grant')
    .description('capability grants: create (with budget, expiry, review gate), list, revoke');
  grant
    .command('create')
    .description('let a principal do an action on a resource')
    .requiredOption('--principal <name>', 'who, e.g. agent:triage/fetch')
    .requiredOption('--action <action>', 'what, e.g. tool.call, http.request, fs.write')
    .requiredOption(
      '--resource <name>',
      'on what, e.g. tool:http.fetch or url:https://api.example.com/*',
    )
    .option('--budget <uses>', 'how many uses (default: unlimited)')
    .option('--expires <duration>', 'lifetime, e.g. 1h, 7d (default: never expires)')
    .option('--ask', 'a person approves each use')
    .option('--reason <text>', 'why, for the audit log')
    .action(wrap(grantCreateCommand));
  grant
    .command('list')
    .description('list active grants (--all: revoked, expired and used up too)')
    .option('--principal <name>', 'only this principal')
    .option('--all', 'include inactive grants')
    .action(wrap(grantListCommand));
  grant
    .command('revoke <id>')
    .description('revoke a grant: its next use is denied')
    .option('--reason <text>', 'why, for the audit log')
    .action(wrap(grantRevokeCommand));
  program
    .command('audit')
    .description('the audit log: every allow, deny and ask with its reasons and policy version')
    .option('--since <when>', 'a duration back from now (1h, 7d) or an ISO date')
    .option('--decision <decision>', 'allow, deny or ask')
    .option('--principal <name>', 'only this principal')
    .option('--limit <n>', 'at most this many records (default 100)')
    .option('--verify', 'verify the audit hash chain instead')
    .action(wrap(auditCommand));
  const quarantine = program
    .command('quarantine')
    .description('blocked actions kept with their full context');
  quarantine
    .command('list')
    .description('list quarantined actions, newest first')
    .option('--kind <kind>', 'ssrf, command, injection, path, integrity, …')
    .option('--since <when>', 'a duration back from now (1h, 7d) or an ISO date')
    .option('--limit <n>', 'at most this many (default 100)')
    .action(wrap(quarantineListCommand));
  quarantine
    .command('show <id>')
    .description('show one quarantined action with its context')
    .action(wrap(quarantineShowCommand));
  program
    .command('serve')
    .description(
      'run the daemon: ACP (JSON-RPC over WebSocket) at /acp, health, metrics and SSE, with workers',
    )
    .option('--listen <host:port>', 'listen here instead of server.listen (default 127.0.0.1:7421)')
    .addOption(
      new Option('--log-level <level>', 'log level (server.log_level)').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
        'silent',
      ]),
    )
    .action(wrap(serveCommand));
  program
    .command('doctor')
    .description('check the installation, configuration, database and ledger')
    .action(wrap(doctorCommand));
  program
    .command('backup <file>')
    .description(
      'copy the database as of one instant, while other processes keep writing, and verify the copy',
    )
    .option('--force', 'replace <file> if it exists')
    .action(wrap(backupCommand));
  program
    .command('restore <file>')
    .description(
      'replace the database with a verified backup (refused while a daemon runs); keeps the old one',
    )
    .action(wrap(restoreCommand));
  program
    .command('migrate')
    .description(
      'copy this installation (SQLite) with its full history into an empty PostgreSQL schema, and verify it',
    )
    .option(
      '--from <sqlite:path>',
      "the SQLite database: sqlite:<path> or a path (default: the home's)",
    )
    .requiredOption(
      '--to <postgres-url>',
      'postgres://user[:password]@host:5432/database[?schema=name] (schema default warden)',
    )
    .addHelpText(
      'after',
      [
        '',
        'Refused while a daemon serves the database or another process has it open, and into a',
        'schema that already holds Warden data. One transaction: a failed copy writes nothing.',
        'Progress on stderr; a summary (rows per table, ledger) on stdout. The SQLite file is only read.',
      ].join('\n'),
    )
    .action(wrap(migrateCommand));
  program
    .command('completion <shell>')
    .description('print a shell completion script: bash, zsh or fish')
    .action(wrap((shell: string) => completionCommand(shell, program)));
  addExamples(program);
  return program;
}

/** `warden <command> --help` ends with examples that work as shown (from the repository). */
const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  init: ['warden init', 'warden --home ./my-home init', 'warden init --force   # rotate the token'],
  run: [
    `warden run examples/review-loop.yaml --input '{"topic": "durable agents"}'`,
    'warden run examples/review-loop.yaml --no-interactive   # stop at questions, exit 4',
    'warden run flow.yaml --input @input.json --session ticket-42',
  ],
  validate: ['warden validate examples/*.yaml', 'warden validate --json flow.yaml'],
  plan: [
    'warden plan --sot examples/plans/sot.md --out state/plan.json',
    'warden plan --check state/plan.json',
  ],
  exec: [
    'warden exec --plan state/plan.json --max-workers 8',
    'warden exec --plan state/plan.json --dry-run',
    'warden exec --plan state/plan.json --resume   # continue after Ctrl-C or a crash',
  ],
  resume: ['warden resume              # every unfinished run', 'warden resume p_01M8…'],
  watch: ['warden watch p_01M8…'],
  ps: [
    'warden ps',
    'warden ps --state running,waiting --limit 10',
    'warden ps --json',
    'WARDEN_TOKEN=… warden --url ws://build-box:7421/acp ps',
  ],
  inspect: ['warden inspect p_01M8…', 'warden inspect p_01M8… --json'],
  events: [
    'warden events',
    'warden events --session ticket-42 --follow',
    'warden events --process p_01M8… --json',
  ],
  interrupts: ['warden interrupts', 'warden interrupts --all --json'],
  approve: ['warden approve int_01M8…', 'warden approve int_01M8… --note "looks right"'],
  deny: ['warden deny int_01M8… --note "wrong amount"'],
  answer: ['warden answer int_01M8… use the staging database'],
  cancel: ['warden cancel p_01M8… --reason "superseded"'],
  tasks: [
    'warden tasks --state queued,running',
    'warden tasks --lane emails --json',
    'WARDEN_URL=ws://10.0.0.5:7421/acp WARDEN_TOKEN=… warden tasks',
  ],
  dlq: ['warden dlq', 'warden dlq show t_01M8…', 'warden dlq redrive --all --lane emails'],
  submit: [
    `warden submit send-email --payload '{"to": "a@example.com"}' --lane emails`,
    'warden submit nightly --key nightly-2026-12-03 --delay 60000',
    'WARDEN_TOKEN=… warden submit nightly --url ws://10.0.0.5:7421/acp   # a remote daemon',
    'warden submit nightly --direct   # the database, even while a daemon runs',
  ],
  verify: ['warden ledger verify', 'warden ledger verify --session ticket-42'],
  doctor: ['warden doctor', 'warden doctor --json'],
  serve: [
    'warden serve',
    'warden serve --listen 0.0.0.0:7421 --log-level debug',
    'WARDEN_HOME=/var/lib/warden warden serve',
  ],
  backup: [
    'warden backup ~/backups/warden-$(date +%F).db',
    'warden backup nightly.db --force --json',
  ],
  restore: ['warden restore ~/backups/warden-2026-12-03.db'],
  migrate: [
    "warden migrate --to 'postgres://warden@db.internal:5432/warden'",
    "warden migrate --from sqlite:/var/lib/warden/warden.db --to 'postgres://warden@db:5432/prod?schema=warden' --json",
  ],
  'token create': [
    'warden token create --name ci --scopes read,write --expires 30d',
    'warden token create --name ops --scopes admin --json',
  ],
  'token list': ['warden token list', 'warden token list --json'],
  'policy check': [
    'warden policy check agent:triage/fetch http.request url:https://api.github.com/repos',
    `warden policy check agent:ops/run shell.exec 'command:git status' --context '{"risk":"low"}'`,
  ],
  'policy show': ['warden policy show', 'warden policy show --cedar'],
  'policy reload': ['warden policy reload'],
  'grant create': [
    'warden grant create --principal agent:triage/fetch --action tool.call --resource tool:http.fetch --budget 10 --expires 1h',
    'warden grant create --principal agent:ops/deploy --action shell.exec --resource "command:kubectl *" --ask',
  ],
  'grant list': ['warden grant list', 'warden grant list --all --json'],
  'grant revoke': ['warden grant revoke grt_01M8… --reason "incident over"'],
  audit: [
    'warden audit --since 1h --decision deny',
    'warden audit --principal agent:triage/fetch --json',
    'warden audit --verify',
  ],
  'quarantine list': ['warden quarantine list', 'warden quarantine list --kind ssrf --since 1d'],
  'quarantine show': ['warden quarantine show qtn_01M8…'],
  'token revoke': ['warden token revoke tok_3f9c…'],
  completion: [
    'warden completion bash > ~/.local/share/bash-completion/completions/warden',
    'source <(warden completion bash)   # this shell only',
    'warden completion zsh > "${fpath[1]}/_warden"',
    'warden completion fish > ~/.config/fish/completions/warden.fish',
  ],
};

function addExamples(program: Command): void {
  const visit = (command: Command) => {
    // A subcommand is looked up by its path under the program first (`token list`).
    const parent = command.parent?.parent ? `${command.parent.name()} ` : '';
    const examples = EXAMPLES[`${parent}${command.name()}`] ?? EXAMPLES[command.name()];
    if (examples)
      command.addHelpText('after', `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`);
    command.commands.forEach(visit);
  };
  program.commands.forEach(visit);
}

/** The kit's `run` flags (also Warden's additions), shared by `warden exec` and `warden run --plan`. */
function addExecOptions(command: Command): Command {
  return command
    .option('--plan <path>', 'the plan JSON to run')
    .option('--max-workers <n>', 'tasks running at once (default 4)')
    .option('--dry-run', 'write evidence stubs only; run no command')
    .option(
      '--resume [run-dir]',
      "continue an interrupted run (default: this plan's newest unfinished run)",
    )
    .option(
      '--hooks <file>',
      'hooks.json (default ./config/hooks.json, then <plan dir>/../config/hooks.json)',
    )
    .option('--manifest <file>', 'manifest.json (default found like hooks.json)')
    .option('--retries <n>', "run a failed task's commands again up to n times (default 0)")
    .option(
      '--timeout <duration>',
      'stop a hook command after this long, e.g. 30s or 5m (default none)',
    )
    .option(
      '--budget <duration>',
      'total time the hook commands may use; each reserves its timeout and gives back the rest',
    )
    .option('--quiet', 'no progress on stderr');
}
