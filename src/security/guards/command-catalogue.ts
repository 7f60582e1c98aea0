/**
 * The command-risk rule catalogue: every reason code with its weight, and the context the rules
 * share. Each rule adds a reason `{code, message, weight}`; a code counts once (its highest
 * weight), and the score is the sum of the weights, capped at 100 (command-risk.ts). The
 * weights are chosen so one rule alone lands at the level it deserves: ≥ 80 critical (run it
 * and something is gone or taken), 50–79 high (needs a human), 25–49 medium, < 25 low.
 * docs/guards.md lists them.
 */
import { type Invocation } from './command-invocations.ts';
import { type PathEnv } from './command-paths.ts';
import type { Walk } from './command-walk.ts';

/** Every rule code with its weight (0..100) and what it means. */
export const COMMAND_RULES = {
  unparseable: { weight: 100, summary: 'the shell parser (mvdan/sh) rejects the text' },
  too_long: { weight: 100, summary: 'longer than the analysed maximum' },
  analysis_failed: {
    weight: 80,
    summary: "Warden's structural parser could not read text mvdan/sh accepts",
  },
  parser_mismatch: { weight: 80, summary: 'the two parsers disagree on the top-level statements' },
  fork_bomb: {
    weight: 100,
    summary: 'a function that calls itself in a pipe or in the background',
  },
  reverse_shell: {
    weight: 95,
    summary: 'a shell wired to a network connection (nc -e, /dev/tcp, socat exec)',
  },
  disk_overwrite: {
    weight: 95,
    summary: 'writes to a block device, formats or wipes a disk (dd, mkfs, wipefs)',
  },
  destructive_rm: {
    weight: 95,
    summary: 'recursive or forced delete of /, ~, a system tree (weight 60–95 by target)',
  },
  download_exec: {
    weight: 90,
    summary: 'runs code fetched from the network (curl|sh, bash -c "$(curl…)", source <(…))',
  },
  credential_exfiltration: {
    weight: 90,
    summary: 'credentials or the environment flow into a network command',
  },
  obfuscated_exec: {
    weight: 85,
    summary: 'runs decoded text (base64 -d | sh, eval "$(… | base64 -d)")',
  },
  chmod_system: { weight: 85, summary: 'chmod -R or world-writable modes on /, ~ or system trees' },
  chown_system: { weight: 80, summary: 'chown/chgrp -R on /, ~ or system trees' },
  kill_all: { weight: 80, summary: 'kill -9 -1: signals every process' },
  write_sensitive_path: {
    weight: 75,
    summary: 'writes under ~/.ssh, ~/.aws, /etc/shadow and similar',
  },
  possible_exfiltration: {
    weight: 70,
    summary: 'reads credentials and talks to the network in the same command',
  },
  write_system_path: {
    weight: 70,
    summary: 'writes, deletes or changes files under /etc, /usr, /boot, /dev…',
  },
  persistence: {
    weight: 70,
    summary: 'crontab, systemctl enable, shell start-up files, launch agents',
  },
  security_disable: {
    weight: 70,
    summary: 'flushes the firewall or turns off SELinux/AppArmor/auditing',
  },
  system_power: { weight: 70, summary: 'shutdown, reboot, halt, poweroff' },
  pipe_to_interpreter: {
    weight: 60,
    summary: 'pipes text into a shell or interpreter that runs it',
  },
  destructive_rm_workspace: {
    weight: 60,
    summary: 'recursive delete of the whole workspace (rm -rf *, rm -rf .)',
  },
  history_tamper: { weight: 60, summary: 'clears or disables shell history' },
  account_change: { weight: 60, summary: 'adds, changes or deletes users, groups or passwords' },
  kernel_change: { weight: 60, summary: 'loads kernel modules or changes sysctl settings' },
  container_escape: {
    weight: 60,
    summary: 'docker run --privileged, host PID namespace, / or the docker socket mounted',
  },
  secret_read: { weight: 55, summary: 'reads a private key, cloud credentials or /etc/shadow' },
  privilege_escalation: { weight: 50, summary: 'sudo, su, doas, pkexec, runuser' },
  eval_dynamic: { weight: 50, summary: 'eval or sh -c of text produced at run time' },
  env_hijack: {
    weight: 50,
    summary: 'sets LD_PRELOAD, BASH_ENV, PROMPT_COMMAND, a PATH starting in . or /tmp…',
  },
  payload_unparseable: { weight: 50, summary: 'a sh -c / eval payload does not parse' },
  setuid_bit: { weight: 50, summary: 'sets the setuid or setgid bit' },
  write_outside_workspace: {
    weight: 40,
    summary: 'writes or deletes outside the workspace (not /tmp)',
  },
  shred_files: { weight: 40, summary: 'shreds files' },
  dynamic_command: { weight: 35, summary: 'the command name is computed at run time' },
  secret_in_network_args: {
    weight: 70,
    summary: 'a secret-looking variable ($*TOKEN, $*SECRET…) in a URL or body (35 in a header)',
  },
  network_listener: { weight: 35, summary: 'opens a listening socket (nc -l, socat *-LISTEN)' },
  git_force_push: {
    weight: 30,
    summary: 'git push --force / --mirror / +refspec (20 for --force-with-lease)',
  },
  rm_dynamic_target: { weight: 30, summary: 'rm -r of a path built from a variable' },
  dynamic_payload: { weight: 20, summary: 'sh -c payload with unresolved variables' },
  dotenv_read: { weight: 20, summary: 'reads a .env file' },
  world_writable: { weight: 20, summary: 'chmod 777/666/o+w on a file' },
  eval_known_generator: {
    weight: 15,
    summary: 'eval "$(ssh-agent -s)" and other well-known environment generators',
  },
  env_dump: { weight: 10, summary: 'prints the whole environment (env, printenv, set)' },
  write_dynamic_path: { weight: 10, summary: 'writes to a path only known at run time' },
} as const satisfies Record<string, { weight: number; summary: string }>;

export type RuleCode = keyof typeof COMMAND_RULES;

export interface Reason {
  readonly code: string;
  readonly message: string;
  readonly weight: number;
}

/** Reasons by code, keeping the heaviest instance of each. */
export class ReasonSet {
  readonly #byCode = new Map<string, Reason>();

  add(code: RuleCode, message: string, weight: number = COMMAND_RULES[code].weight): void {
    const prev = this.#byCode.get(code);
    if (prev === undefined || weight > prev.weight)
      this.#byCode.set(code, { code, message, weight });
  }

  merge(other: readonly Reason[], prefix: string): void {
    for (const r of other) this.add(r.code as RuleCode, `${prefix}${r.message}`, r.weight);
  }

  list(): Reason[] {
    return [...this.#byCode.values()].sort(
      (a, b) => b.weight - a.weight || a.code.localeCompare(b.code),
    );
  }
}

export interface RuleContext {
  readonly walk: Walk;
  /** Invocations of each node (index = node index). */
  readonly invs: readonly (readonly Invocation[])[];
  readonly env: PathEnv;
  readonly reasons: ReasonSet;
  /** Analyses shell text run by a command (sh -c, eval, su -c…) and merges its reasons. */
  readonly payload: (text: string, label: string) => void;
}

export const SECRET_VAR =
  /(SECRET|TOKEN|PASSW(OR)?D|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL|SESSION_KEY|AUTH)/i;
export const HISTORY_FILE =
  /(^|\/)\.(bash|zsh|sh|ksh|python|mysql|psql|node_repl|lesshst)_?history$|fish_history$/;
export const ENV_GENERATORS = new Set([
  'ssh-agent',
  'pyenv',
  'rbenv',
  'nodenv',
  'direnv',
  'brew',
  'starship',
  'conda',
  'fnm',
  'zoxide',
  'mise',
  'rtx',
  'opam',
  'keychain',
  'dircolors',
  'thefuck',
]);
export const READ_ONLY_KEY_USERS = new Set([
  'ls',
  'stat',
  'file',
  'test',
  '[',
  'chmod',
  'chown',
  'ssh-add',
  'ssh-keygen',
  'ssh',
  'scp',
  'sftp',
  'git',
  'du',
  'wc',
]);
export const q = (s: string) => `\`${s.length > 60 ? `${s.slice(0, 57)}…` : s}\``;
export const show = (argv: readonly string[]) => q(argv.join(' '));

/** The invocations of `nodes`. */
export function invsIn(ctx: RuleContext, nodes: readonly number[]): Invocation[] {
  return nodes.flatMap((n) => ctx.invs[n] ?? []);
}
