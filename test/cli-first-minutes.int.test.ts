/**
 * What a new user meets first: every next-step command the CLI prints works when pasted into a
 * new shell, and an old Node gets a message saying what to do instead of a crash.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { MINIMUM_NODE, nodeVersionProblem } from '../src/cli/node-version.ts';
import { json, REPO, runCli } from './helpers/cli.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

afterAll(removeTempDirs);

/** The commands after "<label>: " in the CLI's output (each up to the next double space). */
function printedCommands(output: string, label: string): string[] {
  const out: string[] = [];
  for (const line of output.split('\n')) {
    let at = line.indexOf(`${label}: `);
    while (at !== -1) {
      const start = at + label.length + 2;
      const end = line.indexOf('   ', start);
      out.push(line.slice(start, end === -1 ? undefined : end).trim());
      at = line.indexOf(`${label}: `, start);
    }
  }
  return out;
}

/** Runs a command line in a fresh shell in the repository: no WARDEN_* variables, its own $HOME. */
function shell(commandLine: string, home: string): { code: number; output: string } {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: home, NO_COLOR: '1' };
  const result = spawnSync('bash', ['-c', commandLine], { cwd: REPO, env, encoding: 'utf8' });
  return { code: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}

describe('the commands Warden prints as next steps', () => {
  // Through the repository's ./warden launcher, as the README and the demo use it.
  it('approve and resume hints work when pasted into a new shell', () => {
    const home = tempDir(); // not the default home: the hints must carry it
    const pastingHome = tempDir(); // $HOME of the new shell, so ~/.warden is elsewhere
    const waiting = shell(
      `WARDEN_HOME='${home}' ./warden run examples/review-loop.yaml --no-interactive`,
      pastingHome,
    );
    expect(waiting.code, waiting.output).toBe(4);
    const [approve] = printedCommands(waiting.output, 'approve with');
    const [deny] = printedCommands(waiting.output, 'or deny with');
    const [resume] = printedCommands(waiting.output, 'then continue it with');
    expect(approve).toBe(`./warden --home ${home} approve ${approve!.split(' ').at(-1)}`);
    expect(deny).toBe(approve!.replace(' approve ', ' deny '));
    expect(resume).toMatch(/^\.\/warden --home \S+ resume p_\w+$/);

    const approved = shell(approve!, pastingHome);
    expect(approved.code, approved.output).toBe(0);
    // The approval prints its own next step; it must work too.
    const [next] = printedCommands(approved.output, 'continue it with');
    expect(next).toBe(resume);
    const resumed = shell(next!, pastingHome);
    expect(resumed.code, resumed.output).toBe(0);
    expect(resumed.output).toContain('completed');
  });

  it('`init` and an empty `ps` name the next command the same way', () => {
    const home = tempDir();
    const init = shell(`./warden --home '${home}' init`, tempDir());
    expect(init.code, init.output).toBe(0);
    expect(init.output.match(/next: (.*)$/m)?.[1]?.trim()).toBe(
      `./warden --home ${home} run examples/review-loop.yaml`,
    );
    const next = shell(`./warden --home '${home}' ps`, tempDir());
    expect(next.output).toContain(`start one with: ./warden --home ${home} run`);
  });
});

describe('an unsupported Node.js', () => {
  it('nodeVersionProblem accepts the minimum and newer, and refuses older with what to do', () => {
    const { major, minor } = MINIMUM_NODE;
    expect(nodeVersionProblem(`${major}.${minor}.0`)).toBeNull();
    expect(nodeVersionProblem(`${major}.${minor + 3}.1`)).toBeNull();
    expect(nodeVersionProblem(`${major + 2}.0.0`)).toBeNull();
    for (const old of [`${major}.${minor - 1}.9`, '20.20.2', '18.0.0']) {
      const message = nodeVersionProblem(old);
      expect(message).toContain(`this is Node.js ${old}`);
      expect(message).toContain('source scripts/use-node.sh');
      expect(message).toContain('./warden');
    }
  });

  it('the built `warden` executable says so on the machine’s old Node instead of crashing', () => {
    const entry = join(REPO, 'dist/cli/warden.js');
    expect(existsSync(entry), 'npm test builds dist/ before the tests').toBe(true);
    // This machine kind ships Node 20 as /usr/bin/node (the reason this check exists).
    const system = '/usr/bin/node';
    expect(existsSync(system)).toBe(true);
    const version = execFileSync(system, ['-p', 'process.versions.node'], {
      encoding: 'utf8',
    }).trim();
    const result = spawnSync(system, [entry, 'ps'], {
      encoding: 'utf8',
      env: { PATH: '/usr/bin:/bin' },
    });
    if (nodeVersionProblem(version) === null) {
      // A machine whose system Node is new enough runs the CLI normally.
      expect(result.signal).toBeNull();
      expect(result.stderr).not.toContain('needs Node.js');
    } else {
      expect(result.signal).toBeNull(); // no segmentation fault
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`this is Node.js ${version}`);
      expect(result.stderr).toContain('source scripts/use-node.sh');
      expect(result.stdout).toBe('');
    }
  });
});

describe('one rule for database paths typed in the shell', () => {
  it('--db and WARDEN_DB are both relative to the current directory; database: to the home', () => {
    const home = tempDir();
    const cwd = tempDir();
    const cli = (args: string[], env: Record<string, string> = {}) =>
      spawnSync(process.execPath, [join(REPO, 'src/cli/main.ts'), ...args], {
        cwd,
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', HOME: home, WARDEN_HOME: home, NO_COLOR: '1', ...env },
      });
    expect(cli(['init', '--db', 'by-flag.db']).status).toBe(0);
    expect(existsSync(join(cwd, 'by-flag.db'))).toBe(true);
    expect(cli(['init'], { WARDEN_DB: 'by-env.db' }).status).toBe(0);
    expect(existsSync(join(cwd, 'by-env.db'))).toBe(true);
    expect(existsSync(join(home, 'by-env.db'))).toBe(false);
    // The default, from config.yaml, lives in the home.
    expect(cli(['init']).status).toBe(0);
    expect(existsSync(join(home, 'warden.db'))).toBe(true);
    expect(existsSync(join(cwd, 'warden.db'))).toBe(false);
  });
});

describe('counts read as English', () => {
  it('ledger verify on a new home says "1 session", not "1 sessions"', () => {
    const home = tempDir();
    expect(shell(`./warden --home '${home}' init`, tempDir()).code).toBe(0);
    // One job: its events go to the one `system` session.
    expect(shell(`./warden --home '${home}' submit noop --payload '{}'`, tempDir()).code).toBe(0);
    const verified = shell(`./warden --home '${home}' ledger verify`, tempDir());
    expect(verified.code, verified.output).toBe(0);
    expect(verified.output).toMatch(/ledger ok: \d+ events in 1 session$/m);
  });
});

describe('small things a new user trips over', () => {
  it('submit names the flag that is wrong, with its range', async () => {
    const home = tempDir();
    const payload = await runCli(['submit', 'noop', '--payload', 'nope'], { home });
    expect(payload.code).toBe(2);
    expect(payload.stderr).toContain('--payload is not valid JSON');
    expect(payload.stderr).not.toContain('--input');
    const attempts = await runCli(['submit', 'noop', '--attempts', '0'], { home });
    expect(attempts.code).toBe(2);
    expect(attempts.stderr).toContain('--attempts must be an integer from 1 to 1000 (got 0)');
    const delay = await runCli(['submit', 'noop', '--delay', '1.5'], { home });
    expect(delay.code).toBe(2);
    expect(delay.stderr).toContain('--delay must be an integer from 0 to');
  });

  it('init on a file that is not a Warden database writes nothing', async () => {
    const home = tempDir();
    writeFileSync(join(home, 'warden.db'), 'this is not a database, just some text '.repeat(200));
    const init = await runCli(['init'], { home });
    expect(init.code, init.stderr).toBe(6);
    expect(init.stderr).toContain('STORE_CORRUPT');
    expect(readdirSync(home)).toEqual(['warden.db']);
    // A home that did not exist is not left behind either.
    const fresh = join(tempDir(), 'new-home');
    const elsewhere = await runCli(['init', '--db', join(home, 'warden.db')], { home: fresh });
    expect(elsewhere.code).toBe(6);
    expect(existsSync(fresh)).toBe(false);
  });

  it('the resolver names the account even when $USER and $LOGNAME are unset', async () => {
    const home = tempDir();
    const ran = await runCli(['run', 'examples/review-loop.yaml', '--no-interactive', '--json'], {
      home,
    });
    const { pid, pending_interrupts: pending } = json<{
      pid: string;
      pending_interrupts: { id: string }[];
    }>(ran);
    const approved = await runCli(['approve', pending[0]!.id], {
      home,
      env: { USER: '', LOGNAME: '' },
    });
    expect(approved.code, approved.stderr).toBe(0);
    const { interrupts } = json<{ interrupts: { id: string; resolver: string }[] }>(
      await runCli(['inspect', pid, '--json'], { home }),
    );
    expect(interrupts.find((i) => i.id === pending[0]!.id)?.resolver).toBe(
      `cli:${userInfo().username}`,
    );
  });
});

describe('a model the run cannot reach', () => {
  it('is a configuration error before the run is created', async () => {
    const home = tempDir();
    expect((await runCli(['init'], { home })).code).toBe(0);
    const env = { OPENAI_BASE_URL: '', OPENAI_API_KEY: '' };
    const ran = await runCli(['run', 'examples/openai-chat.yaml', '--input', '{"question":"x"}'], {
      home,
      env,
    });
    expect(ran.code).toBe(2);
    expect(ran.stderr).toContain('CONFIG_INVALID');
    expect(ran.stderr).toContain("stage 'answer' cannot reach its model");
    expect(ran.stderr).toContain('OPENAI_BASE_URL');
    const runs = json<unknown[]>(await runCli(['ps', '--json'], { home }));
    expect(runs).toEqual([]); // nothing was created
  });
});

describe('the ./warden launcher', () => {
  it('on an installed and built checkout, starts without installing or building again', () => {
    // npm test built dist/ after the sources last changed, so nothing is to be done: the launcher
    // must go straight to the CLI (it prints what it does when it does install or build).
    const result = spawnSync('./warden', ['--version'], {
      cwd: REPO,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: tempDir(), NO_COLOR: '1' },
    });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(result.stderr).toBe('');
  });
});

describe('commands that only read create nothing', () => {
  it('ps, interrupts and tasks on a missing home answer "nothing yet" and leave no home behind', async () => {
    const home = join(tempDir(), 'not-yet');
    for (const args of [['ps'], ['interrupts'], ['tasks']]) {
      const human = await runCli(args, { home });
      expect(human.code, human.stderr).toBe(0);
      const machine = await runCli([...args, '--json'], { home });
      expect(json(machine)).toEqual([]);
    }
    expect(existsSync(home)).toBe(false);
  });

  it('a home that run creates is private (0700), like the one init creates', async () => {
    const home = join(tempDir(), 'made-by-submit');
    const submitted = await runCli(['submit', 'noop', '--payload', '{}'], { home });
    expect(submitted.code, submitted.stderr).toBe(0);
    expect(statSync(home).mode & 0o777).toBe(0o700);
  });

  it('doctor on a damaged database does not tell you to run doctor', async () => {
    const home = tempDir();
    writeFileSync(join(home, 'warden.db'), 'not a database '.repeat(500));
    const doctor = await runCli(['doctor'], { home });
    expect(doctor.code).toBe(1);
    expect(doctor.stdout + doctor.stderr).toContain('is not a readable Warden database');
    expect(doctor.stdout + doctor.stderr).not.toContain('warden doctor');
  });
});
