/**
 * Child OS processes for multi-process tests: run an ES module given as text, or a TypeScript
 * file with arguments, in a new `node`, and collect its stdout by line. Every child is
 * remembered so a test file can SIGKILL whatever is left in `afterEach` ({@link killChildren}).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A `file:` URL for a path relative to the repository root, for `import` in child code. */
export function moduleUrl(path: string): string {
  return pathToFileURL(join(ROOT, path)).href;
}

export interface Child {
  readonly pid: number;
  readonly lines: string[];
  /** stderr so far. */
  stderr(): string;
  readonly exited: Promise<number | null>;
  /** Waits for a stdout line matching `match`; fails if the child exits first or on timeout. */
  line(match: (line: string) => boolean, what: string, timeoutMs?: number): Promise<string>;
  /** SIGKILLs the child (if still running) and waits for it to exit. */
  kill(): Promise<void>;
  readonly process: ChildProcess;
}

const live: Child[] = [];

/** Runs an ES module given as text in a new `node` process. */
export function spawnModule(code: string): Child {
  return track(spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: 'pipe' }));
}

/** Runs a script (TypeScript runs directly on Node ≥ 22.12) with arguments. */
export function spawnScript(file: string, args: readonly string[]): Child {
  return track(spawn(process.execPath, [file, ...args], { stdio: 'pipe' }));
}

/** SIGKILLs every child still running (call from afterEach). */
export async function killChildren(): Promise<void> {
  for (const child of live.splice(0)) await child.kill();
}

function track(proc: ChildProcess): Child {
  const lines: string[] = [];
  let stderr = '';
  let buffer = '';
  let done = false;
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (chunk: string) => {
    buffer += chunk;
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      lines.push(buffer.slice(0, i));
      buffer = buffer.slice(i + 1);
    }
  });
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => {
    proc.on('close', (code) => {
      done = true;
      resolve(code);
    });
  });
  const child: Child = {
    pid: proc.pid!,
    lines,
    stderr: () => stderr,
    exited,
    process: proc,
    async line(match, what, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find(match);
        if (found !== undefined) return found;
        if (done) throw new Error(`child exited before ${what}; stderr: ${stderr}`);
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${what}; stderr: ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async kill() {
      if (!done) proc.kill('SIGKILL');
      await exited;
    },
  };
  live.push(child);
  return child;
}
