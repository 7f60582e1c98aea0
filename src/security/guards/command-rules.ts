/**
 * Per-command rules (rm, dd, chmod, kill, sudo, crontab, iptables, nc, git push, docker run…)
 * and {@link applyRules}, which runs every rule over a walked script: these, the code rules
 * (command-code.ts) and the script-level rules (command-flow.ts). Weights: command-catalogue.ts.
 */
import { HISTORY_FILE, q, type RuleContext, show } from './command-catalogue.ts';
import { evalRule, execWord, interpreterRule, SYSTEM_CALL } from './command-code.ts';
import {
  devTcp,
  downloadRules,
  exfiltrationRules,
  forkBombRule,
  pipelineRules,
  writeRules,
} from './command-flow.ts';
import {
  baseName,
  flagSet,
  type Invocation,
  operands,
  optionValue,
  PRIVILEGE_WRAPPERS,
} from './command-invocations.ts';
import { classifyPath } from './command-paths.ts';

export {
  COMMAND_RULES,
  type Reason,
  ReasonSet,
  type RuleCode,
  type RuleContext,
} from './command-catalogue.ts';

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
