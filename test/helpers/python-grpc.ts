/**
 * The Python gRPC client example (examples/clients/python-grpc) for tests: its code generated
 * into a temporary directory with its own generate.sh, `run_pipeline.py` run as a child process
 * with the system Python (Debian's python3-grpcio; scripts/debian-deps.sh installs it), and the
 * run's events read back over the daemon's API or with the `warden` CLI.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

import type { WardenClient } from '../../src/client/index.ts';
import { REPO, runCli } from './cli.ts';

/** Not the pyenv/venv `python3` on PATH: the system one, which has Debian's grpc packages. */
export const PYTHON = '/usr/bin/python3';
export const EXAMPLE = join(REPO, 'examples', 'clients', 'python-grpc');

/** Fails with what to do when the system Python cannot import grpc and grpc_tools. */
export function requirePythonGrpc(): void {
  const check = spawnSync(PYTHON, ['-c', 'import grpc, grpc_tools'], { encoding: 'utf8' });
  if (check.status !== 0)
    throw new Error(
      `${PYTHON} cannot import grpc and grpc_tools (run scripts/debian-deps.sh):\n${check.stderr ?? String(check.error)}`,
    );
}

/** Runs the example's generate.sh into `dir` (the code is never written into the checkout). */
export function generateClient(dir: string): void {
  const result = spawnSync('bash', [join(EXAMPLE, 'generate.sh'), dir], { encoding: 'utf8' });
  if (result.status !== 0)
    throw new Error(`generate.sh failed (${String(result.status)}):\n${result.stderr}`);
}

/** An interrupt as the session's state dict shows it (`interrupt`). */
export interface StateDictInterrupt {
  readonly id: string;
  readonly kind: string;
  readonly question: string;
  readonly message: string;
  readonly status?: string;
  readonly response?: Record<string, unknown>;
}

/** The last stdout line of run_pipeline.py. */
export interface PipelineResult {
  readonly process_id: string;
  readonly pipeline: string;
  /** `terminated`, or `interrupted` when the loop returned at WAIT_INTERRUPT (exit status 2). */
  readonly status: string;
  readonly terminal_reason: string;
  readonly termination_message: string;
  readonly error: string | null;
  /** The WAIT_INTERRUPT the loop returned at last, when it ended there (`CLARIFICATION`). */
  readonly interrupt_kind: string | null;
  readonly interrupt_id: string | null;
  /** The last interrupt the loop returned at, as GetSessionState showed it then. */
  readonly interrupt: StateDictInterrupt | null;
  /** The interrupts answered through InitializeSession(force) (`--answer`). */
  readonly answered: Array<{ readonly id: string; readonly text: string }>;
  /** Each return of the loop, in order. */
  readonly phases: Array<{
    readonly status: string;
    readonly terminal_reason?: string;
    readonly error?: string | null;
    readonly interrupt_kind?: string;
  }>;
  readonly counters: {
    readonly agent_hop_count: number;
    readonly llm_call_count: number;
    readonly iteration: number;
  };
  readonly current_stage: string;
  readonly terminated: boolean;
  /** The state dict's lowercase reason the client merged (`max_loop_exceeded`). */
  readonly envelope_terminal_reason: string | null;
  /** The agents the client ran, in order. */
  readonly ran: string[];
  readonly outputs: Record<string, Record<string, unknown>>;
  /** GetSessionState after the loop. */
  readonly session: {
    readonly current_stage?: string;
    readonly stage_order?: string[];
    readonly edge_traversals?: Record<string, number>;
    readonly terminated?: boolean;
    readonly terminal_reason?: string;
    readonly error?: string;
  };
  /** GetSessionState's state dict after the loop (§3.2). */
  readonly state: Record<string, unknown> & {
    readonly interrupt_pending?: boolean;
    readonly interrupt?: StateDictInterrupt | null;
  };
  readonly retries: number;
  readonly already_committed: number;
}

export interface PipelineProcess {
  readonly child: ChildProcess;
  /** The JSON progress lines on stderr so far (`{event, agent, …}`). */
  progress(): Array<Record<string, unknown>>;
  stdout(): string;
  stderr(): string;
  /** Resolves when the client exits: its exit code and its result line. */
  readonly done: Promise<{ code: number | null; result: PipelineResult }>;
}

/** Starts run_pipeline.py with `args` (e.g. `--address`, `--pipeline`), on the generated code. */
export function startPipeline(genDir: string, args: readonly string[]): PipelineProcess {
  const child = spawn(PYTHON, [join(EXAMPLE, 'run_pipeline.py'), ...args], {
    env: { ...process.env, PYTHONPATH: genDir, PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; result: PipelineResult }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve({ code, result: JSON.parse(last) as PipelineResult });
      } catch {
        reject(
          new Error(
            `run_pipeline.py printed no result (exit ${String(code)}):\n${stdout}\n${stderr}`,
          ),
        );
      }
    });
  });
  return {
    child,
    done,
    stdout: () => stdout,
    stderr: () => stderr,
    progress: () =>
      stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as Record<string, unknown>];
          } catch {
            return []; // a line still being written
          }
        }),
  };
}

export async function runPipeline(
  genDir: string,
  args: readonly string[],
): Promise<{ code: number | null; result: PipelineResult; stderr: string }> {
  const run = startPipeline(genDir, args);
  const { code, result } = await run.done;
  return { code, result, stderr: run.stderr() };
}

export interface WardenEvent {
  readonly seq: number;
  readonly type: string;
  readonly process_id: string | null;
  readonly data: Record<string, unknown>;
}

/**
 * The Warden run behind a client's session (InitializeSession keeps the jeeves `process_id` in
 * the run's `metadata.jeeves`), and its events, read over the daemon's own API (ACP).
 */
export async function runOf(
  client: WardenClient,
  processId: string,
): Promise<{ pid: string; sessionId: string; events: WardenEvent[] }> {
  const [run] = await runsFor(client, processId);
  if (!run) throw new Error(`no Warden run for the jeeves process_id ${processId}`);
  const events: WardenEvent[] = [];
  for (let from = 0; ;) {
    const page = await client.sessions.history({
      session_id: run.session_id,
      from_seq: from,
      limit: 1_000,
    });
    for (const e of page.events)
      if (e.process_id === run.pid) events.push(e as unknown as WardenEvent);
    if (!page.more) break;
    from = page.last_seq;
  }
  return { pid: run.pid, sessionId: run.session_id, events };
}

/** Every Warden run started for a jeeves `process_id` (one, unless a session was replaced). */
export async function runsFor(
  client: WardenClient,
  processId: string,
): Promise<Array<{ pid: string; session_id: string }>> {
  const { runs } = await client.runs.list({ limit: 1_000 });
  return runs.filter((r) => {
    const envelope = r.envelope as { metadata?: { jeeves?: { process_id?: unknown } } } | undefined;
    return envelope?.metadata?.jeeves?.process_id === processId;
  });
}

/** `warden answer <id> <text> --json`: answers a clarification from Warden's side. */
export async function cliAnswer(
  home: string,
  interruptId: string,
  text: string,
): Promise<{ interrupt: { id: string; kind: string; status: string; response: unknown } }> {
  const answered = await runCli(['answer', interruptId, text, '--json'], { home });
  if (answered.code !== 0) throw new Error(`warden answer failed:\n${answered.stderr}`);
  return JSON.parse(answered.stdout) as {
    interrupt: { id: string; kind: string; status: string; response: unknown };
  };
}

/** The same run's events as `warden events --json` prints them (the CLI, not the API). */
export async function cliEvents(
  home: string,
  run: { readonly pid: string; readonly sessionId: string },
): Promise<WardenEvent[]> {
  const listed = await runCli(
    ['events', '--session', run.sessionId, '--process', run.pid, '--json', '--limit', '10000'],
    { home },
  );
  if (listed.code !== 0) throw new Error(`warden events failed:\n${listed.stderr}`);
  return listed.stdout
    .trim()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as WardenEvent);
}

/** How many events of `type` each stage has (`data.stage`). */
export function perStage(events: readonly WardenEvent[], type: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of events) {
    if (e.type !== type || typeof e.data.stage !== 'string') continue;
    counts[e.data.stage] = (counts[e.data.stage] ?? 0) + 1;
  }
  return counts;
}
