/**
 * The command-risk rules. Each rule adds a reason `{code, message, weight}`; a code counts once
 * (its highest weight), and the score is the sum of the weights, capped at 100
 * (command-risk.ts). The weights are chosen so one rule alone lands at the level it deserves:
 * ≥ 80 critical (run it and something is gone or taken), 50–79 high (needs a human),
 * 25–49 medium, < 25 low. docs/security-guards.md lists them.
 */
import {
  baseName,
  flagSet,
  interpreterUse,
  type Invocation,
  isDecoder,
  isDownload,
  NETWORK_SINKS,
  operands,
  optionValue,
  PRIVILEGE_WRAPPERS,
  SHELLS,
} from './command-invocations.ts';
import { classifyPath, type PathEnv, secretKind } from './command-paths.ts';
import type { Walk, WordView } from './command-walk.ts';

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

const SECRET_VAR =
  /(SECRET|TOKEN|PASSW(OR)?D|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL|SESSION_KEY|AUTH)/i;
const HISTORY_FILE =
  /(^|\/)\.(bash|zsh|sh|ksh|python|mysql|psql|node_repl|lesshst)_?history$|fish_history$/;
const ENV_GENERATORS = new Set([
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
const READ_ONLY_KEY_USERS = new Set([
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
const q = (s: string) => `\`${s.length > 60 ? `${s.slice(0, 57)}…` : s}\``;
const show = (argv: readonly string[]) => q(argv.join(' '));

/** Runs every rule over the walked script. */
export function applyRules(ctx: RuleContext): void {
  const all = ctx.invs.flat();
  for (const inv of all) invocationRules(ctx, inv);
  writeRules(ctx, all);
  pipelineRules(ctx);
  downloadRules(ctx, all);
  exfiltrationRules(ctx, all);
  forkBombRule(ctx);
  for (const r of ctx.walk.redirects) {
    if (/^\/dev\/(tcp|udp)\//.test(r.target.guess)) devTcp(ctx, r.target.guess);
  }
}

function invsIn(ctx: RuleContext, nodes: readonly number[]): Invocation[] {
  return nodes.flatMap((n) => ctx.invs[n] ?? []);
}

function devTcp(ctx: RuleContext, where: string): void {
  const shell = ctx.invs
    .flat()
    .some((i) => SHELLS.has(i.head) || i.head === 'exec' || i.wrappers.includes('exec'));
  if (shell) ctx.reasons.add('reverse_shell', `a shell talks to ${q(where)}`);
  else ctx.reasons.add('credential_exfiltration', `raw network connection through ${q(where)}`, 70);
}

function invocationRules(ctx: RuleContext, inv: Invocation): void {
  const { reasons } = ctx;
  const a = inv.argv;
  const priv = inv.wrappers.find((w) => PRIVILEGE_WRAPPERS.has(w));
  if (priv !== undefined) {
    const what =
      a.length > 0
        ? `runs ${show(a)} through ${priv}`
        : `opens a root shell: ${show(inv.node.guess)}`;
    reasons.add('privilege_escalation', what);
  }
  for (const { name, value } of [
    ...inv.envAssigns,
    ...inv.node.assigns.map((x) => ({ name: x.name, value: x.value?.guess ?? '' })),
  ]) {
    envAssignRule(ctx, name, value);
  }
  if (inv.payload !== null) ctx.payload(inv.payload, `${inv.wrappers.at(-1) ?? ''} payload`);
  if (a.length === 0) return;
  const first = inv.words[0];
  if (first !== undefined && first.strict === null && a[0]!.includes('$')) {
    reasons.add('dynamic_command', `the command name ${q(a[0]!)} is computed at run time`);
  }
  if (first !== undefined) execWord(ctx, first, `the command name ${q(first.guess)}`);
  const f = flagSet(a);
  const ops = operands(a);
  switch (inv.head) {
    case 'su':
      reasons.add('privilege_escalation', `switches user: ${show(a)}`);
      {
        const code = optionValue(a, 'c', '--command');
        if (code !== null) ctx.payload(code, 'su -c payload');
      }
      return;
    case 'sudo':
    case 'doas':
      reasons.add('privilege_escalation', `starts a root shell: ${show(a)}`);
      return;
    case 'eval':
      return evalRule(ctx, inv);
    case 'source':
    case '.':
      if (inv.words[1] !== undefined)
        execWord(ctx, inv.words[1], `${inv.head} ${q(inv.words[1].guess)}`);
      return;
    case 'rm':
      return rmRule(ctx, inv, f, ops);
    case 'find':
      return findRule(ctx, inv);
    case 'dd': {
      const of = a.find((x) => x.startsWith('of='));
      if (of !== undefined && classifyPath(of.slice(3), ctx.env).cls === 'device') {
        reasons.add('disk_overwrite', `dd writes to the device ${q(of.slice(3))}`);
      }
      return;
    }
    case 'alias':
      for (const x of a.slice(1)) {
        const eq = x.indexOf('=');
        if (eq > 0) ctx.payload(x.slice(eq + 1), `alias ${x.slice(0, eq)}`);
      }
      return;
    case 'ssh': {
      // `ssh host cmd…`: the remote command still runs somewhere on the user's behalf.
      const rest = operands(a, [
        '-i',
        '-p',
        '-l',
        '-o',
        '-F',
        '-J',
        '-L',
        '-R',
        '-D',
        '-W',
        '-b',
        '-c',
        '-e',
        '-m',
        '-S',
        '-E',
      ]);
      if (rest.length > 1) ctx.payload(rest.slice(1).join(' '), 'ssh remote command');
      return;
    }
    case 'mv':
      if (ops.at(-1) === '/dev/null') rmRule(ctx, inv, new Set(['r']), ops.slice(0, -1));
      return;
    case 'wipefs':
    case 'mkswap':
    case 'blkdiscard':
    case 'sfdisk':
    case 'sgdisk':
      return disk(ctx, inv);
    case 'fdisk':
    case 'parted':
    case 'gdisk':
      if (!f.has('l') && !f.has('--list') && !a.includes('print')) disk(ctx, inv);
      return;
    case 'shred':
      for (const t of operands(a, ['-n', '--iterations', '-s', '--size', '--random-source'])) {
        const p = classifyPath(t, ctx.env);
        if (p.cls === 'device') reasons.add('disk_overwrite', `shred wipes the device ${q(t)}`);
        else if (HISTORY_FILE.test(t))
          reasons.add('history_tamper', `shreds the history file ${q(t)}`);
        else reasons.add('shred_files', `shreds ${q(t)}`);
      }
      return;
    case 'chmod':
      return chmodRule(ctx, inv, f);
    case 'chown':
    case 'chgrp':
      for (const t of operands(a, ['--reference', '--from']).slice(1)) {
        const p = classifyPath(t, ctx.env);
        if ((f.has('R') || f.has('--recursive')) && p.wide && p.cls !== 'inside') {
          reasons.add('chown_system', `${inv.head} -R on ${q(t)}`);
        }
      }
      return;
    case 'kill':
      return killRule(ctx, a);
    case 'killall5':
      reasons.add('kill_all', 'killall5 signals every process');
      return;
    case 'iptables':
    case 'ip6tables':
      if (f.has('F') || f.has('--flush') || f.has('X') || (f.has('P') && a.includes('ACCEPT'))) {
        reasons.add('security_disable', `flushes or opens the firewall: ${show(a)}`);
      }
      return;
    case 'nft':
      if (a.includes('flush')) reasons.add('security_disable', `flushes nftables: ${show(a)}`);
      return;
    case 'ufw':
      if (a[1] === 'disable' || a[1] === 'reset')
        reasons.add('security_disable', `turns the firewall off: ${show(a)}`);
      return;
    case 'setenforce':
      if (a[1] === '0' || a[1]?.toLowerCase() === 'permissive')
        reasons.add('security_disable', 'turns SELinux enforcement off');
      return;
    case 'auditctl':
      if (f.has('D') || f.has('e'))
        reasons.add('security_disable', `changes audit rules: ${show(a)}`);
      return;
    case 'systemctl':
      return systemctlRule(ctx, a);
    case 'shutdown':
    case 'reboot':
    case 'halt':
    case 'poweroff':
      reasons.add('system_power', `${show(a)} stops the machine`);
      return;
    case 'init':
    case 'telinit':
      if (a[1] === '0' || a[1] === '6') reasons.add('system_power', `${show(a)} stops the machine`);
      return;
    case 'crontab':
      if (!(a.length === 2 && f.has('l')))
        reasons.add('persistence', `changes the crontab: ${show(a)}`);
      return;
    case 'launchctl':
      if (['load', 'bootstrap', 'submit', 'enable'].includes(a[1] ?? ''))
        reasons.add('persistence', `registers a launch job: ${show(a)}`);
      return;
    case 'at':
    case 'batch':
      if (!f.has('l')) reasons.add('persistence', `schedules a job: ${show(a)}`);
      return;
    case 'history':
      if (f.has('c') || f.has('w') || f.has('d'))
        reasons.add('history_tamper', `${show(a)} rewrites shell history`);
      return;
    case 'unset':
      if (a.some((x) => /^HIST(FILE|SIZE|FILESIZE)$/.test(x)))
        reasons.add('history_tamper', `${show(a)} disables shell history`);
      return;
    case 'set':
      if (a[1] === '+o' && a[2] === 'history')
        reasons.add('history_tamper', 'set +o history disables shell history');
      if (a.length === 1) reasons.add('env_dump', '`set` prints every variable');
      return;
    case 'useradd':
    case 'adduser':
    case 'userdel':
    case 'deluser':
    case 'usermod':
    case 'passwd':
    case 'chpasswd':
    case 'groupadd':
    case 'groupmod':
    case 'gpasswd':
    case 'visudo':
    case 'vipw':
    case 'chage':
      reasons.add('account_change', `${show(a)} changes accounts`);
      return;
    case 'insmod':
    case 'rmmod':
      reasons.add('kernel_change', `${show(a)} changes kernel modules`);
      return;
    case 'modprobe':
      if (!f.has('n') && !f.has('--dry-run'))
        reasons.add('kernel_change', `${show(a)} changes kernel modules`);
      return;
    case 'sysctl':
      if (f.has('w') || a.slice(1).some((x) => x.includes('=')))
        reasons.add('kernel_change', `${show(a)} changes kernel settings`);
      return;
    case 'docker':
    case 'podman':
      return containerRule(ctx, inv, f);
    case 'git':
      return gitRule(ctx, a);
    case 'awk':
    case 'gawk':
    case 'mawk':
    case 'nawk': {
      const program = operands(a, ['-F', '-v', '-f'])[0];
      if (program !== undefined)
        for (const m of program.matchAll(SYSTEM_CALL)) ctx.payload(m[2]!, `${inv.head} system()`);
      return;
    }
    case 'nc':
    case 'ncat':
    case 'netcat':
      if (
        f.has('e') ||
        f.has('c') ||
        f.has('--exec') ||
        f.has('--sh-exec') ||
        f.has('--lua-exec')
      ) {
        reasons.add('reverse_shell', `${show(a)} connects a program to the network`);
      } else if (f.has('l') || f.has('--listen'))
        reasons.add('network_listener', `${show(a)} listens for connections`);
      return;
    case 'socat':
      if (a.some((x) => /^(exec|system):/i.test(x)))
        reasons.add('reverse_shell', `${show(a)} connects a program to the network`);
      else if (a.some((x) => /-listen:/i.test(x)))
        reasons.add('network_listener', `${show(a)} listens for connections`);
      return;
  }
  if (/^(mkfs|mke2fs|mkdosfs|mkswap)/.test(inv.head)) return disk(ctx, inv);
  interpreterRule(ctx, inv);
}

function disk(ctx: RuleContext, inv: Invocation): void {
  const dev = inv.argv.slice(1).some((x) => classifyPath(x, ctx.env).cls === 'device');
  ctx.reasons.add('disk_overwrite', `${show(inv.argv)} rewrites a disk`, dev ? 95 : 60);
}

function envAssignRule(ctx: RuleContext, name: string, value: string): void {
  if (
    /^HIST(FILE|SIZE|FILESIZE)$/.test(name) &&
    (value === '' || value === '0' || value === '/dev/null')
  ) {
    ctx.reasons.add('history_tamper', `${name}=${value || "''"} disables shell history`);
  } else if (
    /^(LD_PRELOAD|LD_AUDIT|LD_LIBRARY_PATH|DYLD_INSERT_LIBRARIES|DYLD_LIBRARY_PATH|BASH_ENV|ENV|PROMPT_COMMAND|GIT_SSH_COMMAND|GIT_PROXY_COMMAND|GIT_EXEC_PATH|PERL5OPT|RUBYOPT|PYTHONSTARTUP)$/.test(
      name,
    )
  ) {
    ctx.reasons.add('env_hijack', `sets ${name}, which makes other programs load or run code`);
  } else if (name === 'NODE_OPTIONS' && /(^|\s)(-r|--require|--import)\b/.test(value)) {
    ctx.reasons.add('env_hijack', 'NODE_OPTIONS preloads a module into every node process');
  } else if (name === 'PATH' && /^(\.|:|\/tmp|\/dev\/shm|\/var\/tmp|$)/.test(value)) {
    ctx.reasons.add('env_hijack', `PATH=${value} puts a writable directory first`);
  }
}

/** A word in an execution position (command name, sh -c text, eval argument, source file). */
function execWord(ctx: RuleContext, w: WordView, what: string): void {
  if (w.substs.length === 0) return;
  const inner = invsIn(ctx, w.substs);
  if (inner.some(isDownload))
    ctx.reasons.add(
      'download_exec',
      `${what} runs code downloaded by ${show(inner.find(isDownload)!.argv)}`,
    );
  else if (inner.some(isDecoder))
    ctx.reasons.add(
      'obfuscated_exec',
      `${what} runs decoded text from ${show(inner.find(isDecoder)!.argv)}`,
    );
}

function evalRule(ctx: RuleContext, inv: Invocation): void {
  const args = inv.words.slice(1);
  if (args.length === 0) return;
  for (const w of args) execWord(ctx, w, 'eval');
  if (args.every((w) => w.strict !== null)) {
    ctx.payload(args.map((w) => w.strict).join(' '), 'eval payload');
    return;
  }
  const inner = invsIn(
    ctx,
    args.flatMap((w) => w.substs),
  );
  if (inner.length > 0 && inner.every((i) => ENV_GENERATORS.has(i.head))) {
    ctx.reasons.add('eval_known_generator', `eval of ${show(inner[0]!.argv)} output`);
    return;
  }
  ctx.reasons.add('eval_dynamic', `eval runs text only known at run time: ${show(inv.argv)}`);
  ctx.payload(args.map((w) => w.guess).join(' '), 'eval payload');
}

function interpreterRule(ctx: RuleContext, inv: Invocation): void {
  const use = interpreterUse(inv);
  if (use === null) return;
  const { reasons } = ctx;
  if (use.codeIndex !== -1) {
    const w = inv.words[use.codeIndex];
    const text = inv.argv[use.codeIndex] ?? '';
    if (w !== undefined)
      execWord(ctx, w, `${inv.head} ${q(inv.argv.slice(1, use.codeIndex + 1).join(' '))}`);
    if (use.encoded) reasons.add('obfuscated_exec', `${inv.head} runs a base64-encoded command`);
    if (use.family === 'shell') {
      if (w !== undefined && w.strict === null && /\$\(…\)|`/.test(text)) {
        reasons.add('eval_dynamic', `${inv.head} -c runs text produced at run time`);
      } else if (w !== undefined && w.strict === null && /\$[A-Za-z_{]/.test(text)) {
        reasons.add('dynamic_payload', `${inv.head} -c payload has unresolved variables`);
      }
      ctx.payload(text, `${inv.head} -c payload`);
    } else inlineCode(ctx, inv.head, text);
  }
  if (use.scriptIndex !== -1) {
    const w = inv.words[use.scriptIndex];
    if (w !== undefined) execWord(ctx, w, `${inv.head} ${q(w.guess)}`);
  }
  if (use.readsStdin) {
    for (const r of inv.node.redirects) {
      if ((r.op === '<<' || r.op === '<<-') && r.heredoc !== null)
        feedText(ctx, inv, use.family, r.heredoc.guess);
      if (r.op === '<<<') feedText(ctx, inv, use.family, r.target.guess);
    }
  }
}

/** Text a stage writes to its output when it is a literal: `echo …`, `printf …`, `cat <<EOF`. */
function fedText(inv: Invocation): string | null {
  if (inv.head === 'echo' || inv.head === 'printf') {
    const args = inv.argv.slice(1);
    while (args[0] !== undefined && /^-[neE]+$/.test(args[0])) args.shift();
    return args.join(' ');
  }
  if (inv.head === 'cat' && inv.argv.length === 1) {
    const r = inv.node.redirects.find((x) => x.op === '<<' || x.op === '<<-' || x.op === '<<<');
    if (r !== undefined) return r.heredoc?.guess ?? r.target.guess;
  }
  return null;
}

function feedText(
  ctx: RuleContext,
  inv: Invocation,
  family: string,
  text: string,
  label = `${inv.head} here-document`,
): void {
  if (family === 'shell') ctx.payload(text, label);
  else inlineCode(ctx, inv.head, text);
}

const SYSTEM_CALL =
  /(?:system|popen|exec|execSync|spawnSync|check_output|check_call|call|run|Popen|getoutput|getstatusoutput|shell_exec|passthru)\s*\(\s*\[?\s*(['"])([^'"\n]{1,400})\1/g;

/** Heuristics for program text given to python/perl/ruby/node/php (-c, -e, -r, here-doc). */
function inlineCode(ctx: RuleContext, head: string, raw: string): void {
  const code = raw.slice(0, 16_384);
  const { reasons } = ctx;
  const net =
    /\bsocket\b|TCPSocket|fsockopen|net\.connect|createConnection|IO::Socket|Net::HTTP|urlopen|urllib|requests\.|http\.get|https\.get|fetch\(|LWP|open-uri|Invoke-WebRequest|WebClient|DownloadString/i.test(
      code,
    );
  if (
    /\bsocket\b|TCPSocket|fsockopen|IO::Socket|net\.connect|createConnection/i.test(code) &&
    /subprocess|pty\.spawn|dup2|\/bin\/(ba)?sh|\bexec\b|spawn|popen|child_process|proc_open|system\(/i.test(
      code,
    )
  ) {
    reasons.add('reverse_shell', `${head} code connects a shell to a socket`);
  }
  if (/\bfork\b/.test(code) && /\b(while|for|loop|until)\b/.test(code))
    reasons.add('fork_bomb', `${head} code forks in a loop`);
  if (
    net &&
    /\b(exec|eval|system|spawn|popen|Invoke-Expression|iex)\b/i.test(code) &&
    /urlopen|urllib|requests\.|http\.get|https\.get|fetch\(|LWP|open-uri|Net::HTTP|DownloadString|Invoke-WebRequest/i.test(
      code,
    )
  ) {
    reasons.add('download_exec', `${head} code downloads and runs code`);
  }
  if (net && /os\.environ|process\.env|%ENV|ENV\[|\$env:|getenv/.test(code)) {
    reasons.add(
      'credential_exfiltration',
      `${head} code sends environment variables over the network`,
    );
  }
  if (
    /(rmtree|rmSync|rm_rf|remove_dir_all|rm_r|rimraf)\s*\(\s*(['"])(\/|~|\/home|\/etc|\/usr)\/?\2/.test(
      code,
    )
  ) {
    reasons.add('destructive_rm', `${head} code deletes a whole tree`);
  }
  for (const m of code.matchAll(SYSTEM_CALL)) ctx.payload(m[2]!, `${head} shell string`);
  if (!SHELLS.has(head))
    for (const m of code.matchAll(/`([^`\n]{1,400})`/g)) ctx.payload(m[1]!, `${head} backquote`);
}

function rmRule(ctx: RuleContext, inv: Invocation, f: Set<string>, targets: string[]): void {
  const recursive = f.has('r') || f.has('R') || f.has('--recursive');
  const force = f.has('f') || f.has('--force');
  if (f.has('--no-preserve-root')) ctx.reasons.add('destructive_rm', 'rm --no-preserve-root');
  if (!recursive && !force) return;
  for (const t of targets) {
    const p = classifyPath(t, ctx.env);
    const what = `${show(inv.argv)} deletes ${q(t)}`;
    if (p.cls === 'inside') {
      if (p.wide && recursive)
        ctx.reasons.add('destructive_rm_workspace', `${what}: the whole workspace`);
    } else if (p.cls === 'unknown') {
      if (recursive) ctx.reasons.add('rm_dynamic_target', `${what}: a path only known at run time`);
    } else if (p.wide && (p.cls === 'system' || p.cls === 'home' || p.cls === 'sensitive')) {
      ctx.reasons.add('destructive_rm', what, 95);
    } else if (recursive && (p.cls === 'sensitive' || p.cls === 'persistence')) {
      ctx.reasons.add('destructive_rm', what, 90);
    } else if (recursive && p.cls === 'system') ctx.reasons.add('destructive_rm', what, 80);
    else if (recursive && (p.cls === 'outside' || p.cls === 'home'))
      ctx.reasons.add('destructive_rm', what, 60);
  }
}

function findRule(ctx: RuleContext, inv: Invocation): void {
  const a = inv.argv;
  const deletes =
    a.includes('-delete') ||
    a.some(
      (x, i) =>
        /^-(exec|execdir|ok)$/.test(x) && /^(rm|shred|unlink)$/.test(baseName(a[i + 1] ?? '')),
    );
  if (!deletes) return;
  for (const root of a.slice(1)) {
    if (/^[-(!]/.test(root)) break;
    const p = classifyPath(root, ctx.env);
    if (p.wide && (p.cls === 'system' || p.cls === 'home'))
      ctx.reasons.add('destructive_rm', `${show(a)} deletes under ${q(root)}`, 90);
    else if (p.cls === 'system' || p.cls === 'sensitive' || p.cls === 'outside')
      ctx.reasons.add('destructive_rm', `${show(a)} deletes under ${q(root)}`, 60);
  }
}

function chmodRule(ctx: RuleContext, inv: Invocation, f: Set<string>): void {
  const args = operands(inv.argv, ['--reference']);
  const mode = args[0] ?? '';
  const world =
    /^0?[0-7]?[0-7][0-7][2367]$|(^|,)[ao]*\+[rwx]*w|^a=rwx|^(a|o)\+rwx/.test(mode) ||
    /^[0-7]*777$/.test(mode);
  const setuid = /^0?[2467][0-7]{3}$/.test(mode) || /[ug]*\+[rwx]*s/.test(mode);
  const recursive = f.has('R') || f.has('--recursive');
  if (setuid) ctx.reasons.add('setuid_bit', `${show(inv.argv)} sets the setuid/setgid bit`);
  for (const t of args.slice(1)) {
    const p = classifyPath(t, ctx.env);
    const wideOutside = p.wide && p.cls !== 'inside';
    if ((recursive || world) && (wideOutside || p.cls === 'system' || p.cls === 'sensitive')) {
      ctx.reasons.add('chmod_system', `${show(inv.argv)} changes permissions of ${q(t)}`);
    } else if (world)
      ctx.reasons.add('world_writable', `${show(inv.argv)} makes ${q(t)} writable by everyone`);
  }
}

function killRule(ctx: RuleContext, a: readonly string[]): void {
  let i = 1;
  if (a[i] === '-s' || a[i] === '-n') i += 2;
  else if (a[i]?.startsWith('-') && a[i] !== '--') i++;
  if (a[i] === '--') i++;
  if (a.slice(i).includes('-1')) ctx.reasons.add('kill_all', `${show(a)} signals every process`);
}

function systemctlRule(ctx: RuleContext, a: readonly string[]): void {
  const verb = a.slice(1).find((x) => !x.startsWith('-')) ?? '';
  const units = a.slice(a.indexOf(verb) + 1).join(' ');
  if (/^(poweroff|reboot|halt|kexec|suspend|hibernate)$/.test(verb))
    ctx.reasons.add('system_power', `${show(a)} stops the machine`);
  else if (verb === 'enable' || verb === 'link')
    ctx.reasons.add('persistence', `${show(a)} starts a service at boot`, 50);
  else if (
    /^(stop|disable|mask|kill)$/.test(verb) &&
    /firewalld|ufw|apparmor|auditd|selinux|fail2ban|iptables|nftables|clamav|falco|osquery/.test(
      units,
    )
  ) {
    ctx.reasons.add('security_disable', `${show(a)} stops a security service`);
  }
}

function containerRule(ctx: RuleContext, inv: Invocation, f: Set<string>): void {
  const a = inv.argv;
  if (!a.includes('run') && !a.includes('create') && !a.includes('exec')) return;
  const hit = (why: string) => ctx.reasons.add('container_escape', `${show(a)}: ${why}`);
  if (f.has('--privileged')) hit('--privileged');
  if (a.some((x, i) => x === '--pid=host' || (x === '--pid' && a[i + 1] === 'host')))
    hit('host PID namespace');
  if (a.some((x) => /^--cap-add=(ALL|SYS_ADMIN|SYS_PTRACE)$/i.test(x)))
    hit('adds dangerous capabilities');
  a.forEach((x, i) => {
    const vol =
      x === '-v' || x === '--volume'
        ? a[i + 1]
        : /^--volume=|^-v(?=\/)/.test(x)
          ? x.replace(/^--volume=|^-v/, '')
          : undefined;
    if (vol === undefined) return;
    const src = vol.split(':')[0] ?? '';
    const p = classifyPath(src, ctx.env);
    if (src.includes('docker.sock') || (p.wide && p.cls !== 'inside') || p.cls === 'sensitive')
      hit(`mounts ${q(src)}`);
  });
}

function gitRule(ctx: RuleContext, a: readonly string[]): void {
  let i = 1;
  while (i < a.length && a[i]!.startsWith('-')) i += a[i] === '-C' || a[i] === '-c' ? 2 : 1;
  if (a[i] === 'config') {
    // Settings git runs as commands: a later innocent `git log` would run them.
    const rest = a.slice(i + 1).filter((x) => !x.startsWith('--'));
    const key = rest[0] ?? '';
    const value = rest[1] ?? '';
    if (
      /^core\.(sshcommand|pager|editor|fsmonitor)$|^(diff|merge|filter)\..*\.(command|driver|clean|smudge|textconv)$|^sequence\.editor$/i.test(
        key,
      )
    ) {
      ctx.payload(value, `git config ${key}`);
    } else if (/^alias\./i.test(key) && value.startsWith('!'))
      ctx.payload(value.slice(1), `git config ${key}`);
    else if (/^core\.hookspath$/i.test(key))
      ctx.reasons.add('persistence', `git config ${key} makes git run hooks from ${q(value)}`, 50);
    return;
  }
  if (a[i] !== 'push') return;
  const rest = a.slice(i + 1);
  if (
    rest.some(
      (x) =>
        x === '--force' ||
        x === '-f' ||
        x === '--mirror' ||
        /^\+[^+]/.test(x) ||
        /^-[a-zA-Z]*f/.test(x),
    )
  ) {
    ctx.reasons.add('git_force_push', `${show(a)} can overwrite remote history`);
  } else if (rest.some((x) => x.startsWith('--force-with-lease') || x === '--force-if-includes')) {
    ctx.reasons.add('git_force_push', `${show(a)} rewrites remote history (with lease)`, 20);
  }
}

/** Paths a command writes to, by command. */
function writeTargets(inv: Invocation): string[] {
  const a = inv.argv;
  const ops = operands(a);
  switch (inv.head) {
    case 'rm':
    case 'rmdir':
    case 'unlink':
    case 'shred':
    case 'touch':
    case 'mkdir':
    case 'mv':
      return ops;
    case 'truncate':
      return operands(a, ['-s', '--size', '-r', '--reference']);
    case 'tee':
      return ops;
    case 'cp':
    case 'install':
    case 'ln':
    case 'rsync':
    case 'scp': {
      const t = optionValue(a, 't', '--target-directory');
      if (t !== null) return [t];
      const last = ops.at(-1);
      return ops.length >= 2 && last !== undefined && !/^[^/]*:/.test(last) ? [last] : [];
    }
    case 'chmod':
    case 'chown':
    case 'chgrp':
      return operands(a, ['--reference', '--from']).slice(1);
    case 'sed':
    case 'perl': {
      const f = flagSet(a);
      if (
        !f.has('i') &&
        !f.has('--in-place') &&
        !a.some((x) => x.startsWith('--in-place') || /^-i/.test(x) || /^-[a-z]*i/.test(x))
      )
        return [];
      const hasScript = a.some((x) => x === '-e' || x === '-f' || /^-[a-z]*e$/.test(x));
      const files = operands(a, ['-e', '-f']);
      return hasScript ? files : files.slice(1);
    }
    case 'dd':
      return a.filter((x) => x.startsWith('of=')).map((x) => x.slice(3));
    case 'curl': {
      const o = optionValue(a, 'o', '--output');
      return o === null || o === '-' ? [] : [o];
    }
    case 'wget': {
      const o =
        optionValue(a, 'O', '--output-document') ?? optionValue(a, 'P', '--directory-prefix');
      return o === null || o === '-' ? [] : [o];
    }
    case 'tar': {
      const extract = a.some((x) => /^-?[a-zA-Z]*x/.test(x) || x === '--extract');
      const dir = optionValue(a, 'C', '--directory');
      return extract && dir !== null ? [dir] : [];
    }
    case 'unzip': {
      const dir = optionValue(a, 'd', null);
      return dir === null ? [] : [dir];
    }
    default:
      return [];
  }
}

function writeRules(ctx: RuleContext, all: readonly Invocation[]): void {
  const targets: { path: string; by: string }[] = [];
  for (const inv of all)
    for (const t of writeTargets(inv)) targets.push({ path: t, by: show(inv.argv) });
  for (const r of ctx.walk.redirects) {
    const writes =
      /^(>|>>|>\||&>|&>>|<>)$/.test(r.op) || (r.op === '>&' && !/^(\d+|-)$/.test(r.target.guess));
    if (writes)
      targets.push({ path: r.target.guess, by: `redirection ${q(`${r.op} ${r.target.guess}`)}` });
  }
  for (const { path, by } of targets) {
    const p = classifyPath(path, ctx.env);
    if (HISTORY_FILE.test(p.path))
      ctx.reasons.add('history_tamper', `${by} writes the history file ${q(path)}`);
    switch (p.cls) {
      case 'device':
        ctx.reasons.add('disk_overwrite', `${by} writes to the device ${q(path)}`);
        break;
      case 'system':
        ctx.reasons.add('write_system_path', `${by} writes ${q(path)}`);
        break;
      case 'persistence':
        ctx.reasons.add('persistence', `${by} writes the start-up file ${q(path)}`);
        break;
      case 'sensitive':
        ctx.reasons.add('write_sensitive_path', `${by} writes ${q(path)}`);
        break;
      case 'home':
      case 'outside':
        ctx.reasons.add(
          'write_outside_workspace',
          `${by} writes ${q(path)}, outside the workspace`,
        );
        break;
      case 'unknown':
        ctx.reasons.add(
          'write_dynamic_path',
          `${by} writes ${q(path)}, a path only known at run time`,
        );
        break;
      case 'network':
        devTcp(ctx, path);
        break;
      default:
        break;
    }
  }
}

function pipelineRules(ctx: RuleContext): void {
  for (const pipe of ctx.walk.pipelines) {
    pipe.stages.forEach((stage, k) => {
      if (k === 0 || stage.simple === null) return;
      for (const inv of ctx.invs[stage.simple] ?? []) {
        const use = interpreterUse(inv);
        const stdinSource =
          (inv.head === 'source' || inv.head === '.') &&
          /^(\/dev\/stdin|-|\/proc\/self\/fd\/0)$/.test(inv.argv[1] ?? '');
        if (!(use?.readsStdin === true || stdinSource)) continue;
        const upstream = invsIn(
          ctx,
          pipe.stages.slice(0, k).flatMap((s) => s.nodes),
        );
        const dl = upstream.find(isDownload);
        const dec = upstream.find(isDecoder);
        const net = upstream.find((u) => /^(nc|ncat|netcat|socat|telnet|openssl)$/.test(u.head));
        const sink = invsIn(
          ctx,
          pipe.stages.slice(k + 1).flatMap((s) => s.nodes),
        ).find((u) => /^(nc|ncat|netcat|socat|telnet|openssl)$/.test(u.head));
        const into = show(inv.argv.length > 0 ? inv.argv : [inv.head]);
        if (net !== undefined || sink !== undefined)
          ctx.reasons.add('reverse_shell', `${into} is wired to ${show((net ?? sink)!.argv)}`);
        for (const u of upstream) {
          const text = fedText(u);
          if (text !== null)
            feedText(ctx, inv, use?.family ?? 'shell', text, `text piped into ${inv.head}`);
        }
        if (dl !== undefined)
          ctx.reasons.add('download_exec', `${show(dl.argv)} is piped into ${into}`);
        else if (dec !== undefined)
          ctx.reasons.add(
            'obfuscated_exec',
            `decoded output of ${show(dec.argv)} is piped into ${into}`,
          );
        else
          ctx.reasons.add(
            'pipe_to_interpreter',
            `${show(upstream[0]?.argv ?? [])} is piped into ${into}, which runs it`,
          );
      }
    });
  }
}

/** Files fetched by curl/wget and later run, sourced or made executable. */
function downloadRules(ctx: RuleContext, all: readonly Invocation[]): void {
  const fetched = new Map<string, string>();
  const remember = (path: string, by: Invocation) => {
    const p = classifyPath(path, ctx.env);
    if (p.path !== '') fetched.set(p.path, show(by.argv));
  };
  for (const inv of all) {
    if (!isDownload(inv)) continue;
    const a = inv.argv;
    const url = a.slice(1).find((x) => /^(https?|ftp):\/\//.test(x)) ?? '';
    const urlBase =
      url
        .replace(/[?#].*$/, '')
        .split('/')
        .pop() ?? '';
    for (const t of writeTargets(inv))
      remember(
        inv.head === 'wget' && optionValue(a, 'P', '--directory-prefix') === t
          ? `${t}/${urlBase}`
          : t,
        inv,
      );
    if (
      inv.head === 'curl' &&
      (flagSet(a).has('O') || a.includes('--remote-name')) &&
      urlBase !== ''
    )
      remember(urlBase, inv);
    if (
      inv.head === 'wget' &&
      optionValue(a, 'O', '--output-document') === null &&
      optionValue(a, 'P', '--directory-prefix') === null &&
      urlBase !== ''
    )
      remember(urlBase, inv);
    for (const r of inv.node.redirects)
      if (r.op === '>' || r.op === '>>') remember(r.target.guess, inv);
  }
  if (fetched.size === 0) return;
  const hit = (path: string, how: string) => {
    const p = classifyPath(path, ctx.env);
    const by = fetched.get(p.path);
    if (by !== undefined) ctx.reasons.add('download_exec', `${how} ${q(path)} fetched by ${by}`);
  };
  for (const inv of all) {
    if (inv.argv.length === 0) continue;
    if (inv.argv[0]!.includes('/')) hit(inv.argv[0]!, 'runs');
    const use = interpreterUse(inv);
    if (use !== null && use.scriptIndex !== -1) hit(inv.argv[use.scriptIndex]!, `${inv.head} runs`);
    if ((inv.head === 'source' || inv.head === '.') && inv.argv[1] !== undefined)
      hit(inv.argv[1], 'sources');
    if (inv.head === 'chmod' && /\+x|^[0-7]*[157][0-7]{2}$/.test(inv.argv[1] ?? '')) {
      for (const t of inv.argv.slice(2)) hit(t, 'makes executable');
    }
    if (use?.readsStdin === true)
      for (const r of inv.node.redirects)
        if (r.op === '<') hit(r.target.guess, `${inv.head} reads`);
  }
}

type SecretSource = 'credential' | 'dotenv' | 'env';

function secretSource(
  ctx: RuleContext,
  inv: Invocation,
): { kind: SecretSource; what: string } | null {
  const raw = baseName(inv.node.guess[0] ?? '');
  const printenv =
    inv.head === 'printenv' &&
    (inv.argv.length === 1 || inv.argv.slice(1).some((x) => SECRET_VAR.test(x)));
  if (
    (raw === 'env' && inv.argv.length === 0) ||
    printenv ||
    (inv.head === 'export' && inv.argv[1] === '-p') ||
    (inv.head === 'declare' && /^-[a-z]*[px]/.test(inv.argv[1] ?? ''))
  ) {
    return { kind: 'env', what: show(inv.node.guess) };
  }
  let best: { kind: SecretSource; what: string } | null = null;
  const consider = (path: string) => {
    const k = secretKind(path, ctx.env);
    if (k !== null && (best === null || (best.kind !== 'credential' && k === 'credential')))
      best = { kind: k, what: q(path) };
  };
  // The destination of a copy is written, not read.
  const copies = /^(cp|mv|install|ln|rsync)$/.test(inv.head);
  const args = copies ? inv.argv.slice(1, -1) : inv.argv.slice(1);
  if (!READ_ONLY_KEY_USERS.has(inv.head)) args.forEach((x) => consider(x));
  else if (/^(ssh|scp|sftp)$/.test(inv.head))
    inv.argv.slice(1).forEach((x, i) => inv.argv[i] !== '-i' && consider(x));
  for (const r of inv.node.redirects) if (r.op === '<') consider(r.target.guess);
  return best;
}

function isSink(inv: Invocation): boolean {
  if (!NETWORK_SINKS.has(inv.head)) {
    return /^(dig|nslookup|host)$/.test(inv.head) && inv.words.some((w) => w.substs.length > 0);
  }
  if (inv.head === 'rsync' || inv.head === 'scp')
    return inv.argv.slice(1).some((x) => /^[^/-][^/]*:/.test(x));
  if (inv.head === 'openssl') return inv.argv[1] === 's_client';
  return true;
}

function exfiltrationRules(ctx: RuleContext, all: readonly Invocation[]): void {
  const { reasons } = ctx;
  const sources = new Map<Invocation, { kind: SecretSource; what: string }>();
  for (const inv of all) {
    const s = secretSource(ctx, inv);
    if (s !== null) sources.set(inv, s);
  }
  const sinks = all.filter(isSink);
  const tcp = ctx.walk.redirects.some((r) => /^\/dev\/(tcp|udp)\//.test(r.target.guess));
  for (const sink of sinks) {
    const inner = invsIn(
      ctx,
      sink.words.flatMap((w) => w.substs),
    );
    const fed = inner.map((i) => sources.get(i)).find((s) => s !== undefined);
    const own = sources.get(sink);
    if (fed !== undefined)
      reasons.add('credential_exfiltration', `${show(sink.argv)} sends the output of ${fed.what}`);
    if (own !== undefined)
      reasons.add('credential_exfiltration', `${show(sink.argv)} sends ${own.what}`);
    sink.words.forEach((w, i) => {
      const secret = w.params.find((p) => SECRET_VAR.test(p));
      if (secret === undefined) return;
      // In a URL, a request body or a raw socket it is sent away; in a header it is usually auth.
      const prev = sink.argv[i - 1] ?? '';
      const header =
        /^(-H|--header|-u|--user|--oauth2-bearer)$/.test(prev) || /^authorization:/i.test(w.guess);
      const weight = header ? 35 : 70;
      reasons.add(
        'secret_in_network_args',
        `${show(sink.argv)} sends $${secret}${header ? ' in a header' : ''}`,
        weight,
      );
    });
  }
  for (const pipe of ctx.walk.pipelines) {
    let seen: { kind: SecretSource; what: string } | undefined;
    for (const stage of pipe.stages) {
      const invs = invsIn(ctx, stage.nodes);
      if (seen !== undefined) {
        const sink = invs.find(isSink);
        if (sink !== undefined)
          reasons.add('credential_exfiltration', `${seen.what} is piped into ${show(sink.argv)}`);
      }
      seen ??= invs.map((i) => sources.get(i)).find((s) => s !== undefined);
    }
  }
  const kinds = new Set([...sources.values()].map((s) => s.kind));
  const first = [...sources.values()][0];
  if (first !== undefined && (sinks.length > 0 || tcp)) {
    reasons.add(
      'possible_exfiltration',
      `reads ${first.what} and uses the network in the same command`,
    );
  }
  const cred = [...sources.values()].find((s) => s.kind === 'credential');
  if (cred !== undefined) reasons.add('secret_read', `reads ${cred.what}`);
  if (kinds.has('dotenv'))
    reasons.add(
      'dotenv_read',
      `reads ${[...sources.values()].find((s) => s.kind === 'dotenv')!.what}`,
    );
  if (kinds.has('env'))
    reasons.add(
      'env_dump',
      `${[...sources.values()].find((s) => s.kind === 'env')!.what} prints the environment`,
    );
}

function forkBombRule(ctx: RuleContext): void {
  for (const fn of ctx.walk.functions) {
    const self = fn.nodes
      .flatMap((n) => ctx.invs[n] ?? [])
      .filter((i) => i.head === fn.name || i.argv[0] === fn.name);
    if (self.some((i) => i.node.stages > 1 || i.node.background)) {
      ctx.reasons.add('fork_bomb', `function ${q(fn.name)} starts copies of itself without end`);
    }
  }
}
