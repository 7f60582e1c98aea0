/**
 * What a simple command really runs: wrappers (`sudo`, `env VAR=x`, `nohup`, `timeout 5`,
 * `xargs`, `nice -n 5`…) are peeled off so the rules see the wrapped program, and
 * `find … -exec cmd … ;` yields the command it runs. Also the vocabulary the rules share:
 * interpreters and how they take code, downloaders, decoders, network tools.
 */
import { posix } from 'node:path';

import type { CmdNode, WordView } from './command-walk.ts';

export interface Invocation {
  readonly node: CmdNode;
  /** Guessed argv of the wrapped program (empty for a bare `sudo -i`). */
  readonly argv: readonly string[];
  /** The word each argv element came from. */
  readonly words: readonly WordView[];
  /** Wrapper commands peeled off, outermost first. */
  readonly wrappers: readonly string[];
  /** `NAME` of `env NAME=value cmd` assignments. */
  readonly envAssigns: readonly { name: string; value: string }[];
  /** Basename of argv[0] ('' when argv is empty). */
  readonly head: string;
  /** An `env -S` / `watch` payload: shell text the wrapper runs. */
  readonly payload: string | null;
}

/** Wrapper name → options that take a value, and how many positional words precede the command. */
const WRAPPERS: Record<string, { opts: readonly string[]; positional?: number }> = {
  sudo: { opts: ['-u', '-g', '-h', '-p', '-C', '-D', '-r', '-t', '-U', '-T', '--user', '--group'] },
  doas: { opts: ['-u', '-C'] },
  pkexec: { opts: ['--user'] },
  runuser: { opts: ['-u', '-g', '-G', '--user', '--group'] },
  nohup: { opts: [] },
  time: { opts: ['-f', '-o', '--format', '--output'] },
  nice: { opts: ['-n', '--adjustment'] },
  ionice: { opts: ['-c', '-n', '-p', '-P', '-u'] },
  timeout: { opts: ['-s', '-k', '--signal', '--kill-after'], positional: 1 },
  stdbuf: { opts: ['-i', '-o', '-e'] },
  command: { opts: [] },
  builtin: { opts: [] },
  exec: { opts: ['-a'] },
  setsid: { opts: [] },
  chroot: { opts: ['--userspec', '--groups'], positional: 1 },
  unbuffer: { opts: [] },
  busybox: { opts: [] },
  xargs: {
    opts: [
      '-I',
      '-n',
      '-P',
      '-L',
      '-d',
      '-E',
      '-s',
      '-a',
      '--arg-file',
      '--delimiter',
      '--max-args',
    ],
  },
  flock: { opts: ['-w', '-E', '--timeout', '--conflict-exit-code'], positional: 1 },
  strace: { opts: ['-o', '-e', '-p', '-s', '-u', '-E'] },
  ltrace: { opts: ['-o', '-e', '-p', '-s', '-u'] },
  torsocks: { opts: [] },
  proxychains: { opts: ['-f'] },
  proxychains4: { opts: ['-f'] },
  caffeinate: { opts: ['-t', '-w'] },
  catchsegv: { opts: [] },
};

export const PRIVILEGE_WRAPPERS = new Set(['sudo', 'doas', 'pkexec', 'runuser']);

export const SHELLS = new Set([
  'sh',
  'bash',
  'zsh',
  'dash',
  'ksh',
  'mksh',
  'fish',
  'ash',
  'csh',
  'tcsh',
  'yash',
  'posh',
  'rbash',
]);

/** Interpreter → the flags that take program text (a letter inside a `-xyz` cluster counts). */
const CODE_FLAGS: Record<string, { letters: string; long: readonly string[] }> = {
  python: { letters: 'c', long: [] },
  perl: { letters: 'eE', long: [] },
  ruby: { letters: 'e', long: [] },
  node: { letters: 'ep', long: ['--eval', '--print'] },
  deno: { letters: '', long: [] },
  bun: { letters: 'e', long: ['--eval', '--print'] },
  php: { letters: 'r', long: [] },
  lua: { letters: 'e', long: [] },
  pwsh: { letters: '', long: ['-c', '-command', '-encodedcommand', '-enc', '-ec'] },
  osascript: { letters: 'e', long: [] },
  tclsh: { letters: '', long: [] },
  Rscript: { letters: 'e', long: [] },
};

const INTERPRETER_ALIASES: Record<string, string> = {
  python2: 'python',
  python3: 'python',
  pypy: 'python',
  pypy3: 'python',
  nodejs: 'node',
  'ts-node': 'node',
  tsx: 'node',
  powershell: 'pwsh',
  'powershell.exe': 'pwsh',
  luajit: 'lua',
  irb: 'ruby',
  wish: 'tclsh',
};

/** Options of shells and interpreters that take a value (so the value is not the script). */
const VALUE_OPTS: Record<string, readonly string[]> = {
  shell: ['-o', '-O', '--rcfile', '--init-file'],
  python: ['-W', '-X'],
  node: ['-r', '--require', '--import', '--loader', '--experimental-loader'],
  bun: ['-r', '--preload'],
  pwsh: [
    '-executionpolicy',
    '-ep',
    '-windowstyle',
    '-w',
    '-inputformat',
    '-outputformat',
    '-configurationname',
  ],
};

export const DOWNLOADERS = new Set([
  'curl',
  'wget',
  'fetch',
  'aria2c',
  'http',
  'https',
  'xh',
  'lwp-request',
  'GET',
  'lynx',
  'links',
]);

export const NETWORK_SINKS = new Set([
  'curl',
  'wget',
  'nc',
  'ncat',
  'netcat',
  'socat',
  'telnet',
  'ssh',
  'scp',
  'sftp',
  'rsync',
  'ftp',
  'tftp',
  'http',
  'https',
  'xh',
  'mail',
  'mailx',
  'sendmail',
  'mutt',
  'openssl',
]);

/** Basename, with interpreter version suffixes folded (`python3.12` → `python3`). */
export function baseName(word: string): string {
  const b = posix.basename(word);
  return b
    .replace(/^(python[23]?|pypy3?|perl5?|ruby|php[0-9]*)\.?[0-9.]+$/, '$1')
    .replace(/^php[0-9]+$/, 'php');
}

/** The interpreter family of `head` ('shell', a CODE_FLAGS key, or null). */
export function interpreterOf(head: string): string | null {
  if (SHELLS.has(head)) return 'shell';
  const name = INTERPRETER_ALIASES[head] ?? head;
  return Object.hasOwn(CODE_FLAGS, name) ? name : null;
}

export interface InterpreterUse {
  readonly family: string;
  /** Index (in argv) of the program text given with -c/-e/…, or -1. */
  readonly codeIndex: number;
  /** Index of the script operand, or -1. */
  readonly scriptIndex: number;
  /** The program comes from standard input. */
  readonly readsStdin: boolean;
  /** PowerShell -EncodedCommand. */
  readonly encoded: boolean;
}

/** How an interpreter invocation gets its program, or null when `inv` is not an interpreter. */
export function interpreterUse(inv: Invocation): InterpreterUse | null {
  const family = interpreterOf(inv.head);
  if (family === null) return null;
  const flags =
    family === 'shell'
      ? { letters: 'c', long: ['--command'] }
      : CODE_FLAGS[INTERPRETER_ALIASES[inv.head] ?? inv.head]!;
  const a = inv.argv;
  let codeIndex = -1;
  let scriptIndex = -1;
  let stdinFlag = false;
  let encoded = false;
  let i = 1;
  if (inv.head === 'deno' && a[1] === 'eval')
    return {
      family,
      codeIndex: a.length > 2 ? 2 : -1,
      scriptIndex: -1,
      readsStdin: false,
      encoded,
    };
  const valueOpts = VALUE_OPTS[family] ?? [];
  for (; i < a.length; i++) {
    const arg = a[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (arg === '-' || !(arg.startsWith('-') || (family === 'shell' && arg.startsWith('+')))) break;
    const lower = arg.toLowerCase();
    const eq = lower.indexOf('=');
    const longName = eq === -1 ? lower : lower.slice(0, eq);
    if (flags.long.includes(longName) || (family === 'pwsh' && flags.long.includes(lower))) {
      encoded ||= lower.startsWith('-e');
      codeIndex = eq === -1 ? i + 1 : i;
      break;
    }
    if (valueOpts.includes(family === 'pwsh' ? lower : arg)) {
      i++;
      continue;
    }
    if (arg.startsWith('--') || family === 'pwsh') continue;
    // A cluster like -lc, -pe, -Bc: the first code letter takes the next word. -M/-I/-r attach values.
    const cluster = arg.slice(1);
    if (
      (family === 'perl' && /^[MIx]/.test(cluster)) ||
      (family === 'ruby' && /^[rIx]/.test(cluster))
    )
      continue;
    if ([...cluster].some((ch) => flags.letters.includes(ch))) {
      codeIndex = i + 1;
      break;
    }
    if (family === 'shell' && cluster.includes('s')) stdinFlag = true;
    if (family === 'python' && cluster === 'm')
      return { family, codeIndex: -1, scriptIndex: i + 1, readsStdin: false, encoded };
  }
  if (codeIndex === -1 && i < a.length) scriptIndex = i;
  const operand = scriptIndex === -1 ? null : a[scriptIndex]!;
  const readsStdin =
    codeIndex === -1 &&
    (stdinFlag ||
      operand === null ||
      operand === '-' ||
      operand === '/dev/stdin' ||
      operand === '/proc/self/fd/0');
  return { family, codeIndex, scriptIndex, readsStdin, encoded };
}

/** Peels wrappers off `node` and adds the commands of `find -exec`. */
export function invocationsOf(node: CmdNode): Invocation[] {
  const out: Invocation[] = [];
  unwrap(node, node.guess, node.guessWords, [], out);
  return out;
}

function unwrap(
  node: CmdNode,
  argv: readonly string[],
  words: readonly WordView[],
  outer: readonly string[],
  out: Invocation[],
): void {
  const wrappers = [...outer];
  const envAssigns: { name: string; value: string }[] = [];
  let payload: string | null = null;
  let i = 0;
  while (i < argv.length) {
    const head = baseName(argv[i]!);
    if (head === 'env') {
      wrappers.push('env');
      i++;
      while (i < argv.length) {
        const arg = argv[i]!;
        const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(arg);
        if (m !== null) envAssigns.push({ name: m[1]!, value: m[2]! });
        else if (arg === '-S' || arg === '--split-string') {
          payload = argv.slice(i + 1).join(' ');
          i = argv.length;
        } else if (arg === '-u' || arg === '-C' || arg === '--unset' || arg === '--chdir') i++;
        else if (!arg.startsWith('-')) break;
        i++;
      }
      continue;
    }
    if (head === 'watch') {
      wrappers.push('watch');
      i++;
      while (i < argv.length && argv[i]!.startsWith('-')) i += argv[i] === '-n' ? 2 : 1;
      payload = argv.slice(i).join(' ');
      i = argv.length;
      break;
    }
    const spec = WRAPPERS[head];
    if (spec === undefined) break;
    if (head === 'command' && /^-[vV]/.test(argv[i + 1] ?? '')) break;
    wrappers.push(head);
    i++;
    while (i < argv.length) {
      const arg = argv[i]!;
      if (arg === '--') {
        i++;
        break;
      }
      if (!arg.startsWith('-') || arg === '-') break;
      i += spec.opts.includes(arg) ? 2 : 1;
    }
    i += spec.positional ?? 0;
  }
  const rest = argv.slice(i);
  const inv: Invocation = {
    node,
    argv: rest,
    words: words.slice(i),
    wrappers,
    envAssigns,
    head: rest.length > 0 ? baseName(rest[0]!) : '',
    payload,
  };
  out.push(inv);
  if (inv.head === 'find') {
    for (let j = 1; j < rest.length; j++) {
      if (!/^-(exec|execdir|ok|okdir)$/.test(rest[j]!)) continue;
      let end = j + 1;
      while (end < rest.length && rest[end] !== ';' && rest[end] !== '+') end++;
      unwrap(node, rest.slice(j + 1, end), inv.words.slice(j + 1, end), [...wrappers, 'find'], out);
      j = end;
    }
  }
}

/** Words after the options of a command (options: words starting with `-`, until `--`). */
export function operands(argv: readonly string[], valueOpts: readonly string[] = []): string[] {
  const out: string[] = [];
  let opts = true;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (opts && a === '--') opts = false;
    else if (opts && a.startsWith('-') && a !== '-') {
      if (valueOpts.includes(a)) i++;
    } else out.push(a);
  }
  return out;
}

/** The single-dash flag letters and long options of argv (`-rf` → r, f). */
export function flagSet(argv: readonly string[]): Set<string> {
  const flags = new Set<string>();
  for (const a of argv.slice(1)) {
    if (a === '--') break;
    if (a.startsWith('--')) flags.add(a.split('=')[0]!);
    else if (a.startsWith('-') && a.length > 1) for (const ch of a.slice(1)) flags.add(ch);
  }
  return flags;
}

/** The value of an option (`-o FILE`, `-oFILE`, `--output FILE`, `--output=FILE`), or null. */
export function optionValue(
  argv: readonly string[],
  short: string | null,
  long: string | null,
): string | null {
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (long !== null && a === long) return argv[i + 1] ?? null;
    if (long !== null && a.startsWith(`${long}=`)) return a.slice(long.length + 1);
    if (short !== null && a.startsWith('-') && !a.startsWith('--')) {
      const at = a.indexOf(short, 1);
      if (at === -1 || /[^A-Za-z]/.test(a.slice(1, at))) continue;
      return at === a.length - 1 ? (argv[i + 1] ?? null) : a.slice(at + 1);
    }
  }
  return null;
}

/** A decoder stage: its output is probably hidden program text. */
export function isDecoder(inv: Invocation): boolean {
  const f = flagSet(inv.argv);
  switch (inv.head) {
    case 'base64':
    case 'base32':
    case 'basenc':
      return f.has('d') || f.has('D') || f.has('--decode');
    case 'xxd':
      return f.has('r');
    case 'openssl':
      return (inv.argv[1] === 'enc' || inv.argv[1] === 'base64') && f.has('d');
    case 'uudecode':
    case 'rev':
    case 'gunzip':
    case 'zcat':
    case 'bzcat':
    case 'xzcat':
    case 'unxz':
      return true;
    case 'gzip':
    case 'xz':
    case 'bzip2':
      return f.has('d');
    case 'tr':
      return inv.argv.some((a) => /n-za-m|N-ZA-M/.test(a));
    case 'printf':
    case 'echo':
      return inv.argv.some((a) =>
        /\\x[0-9a-fA-F]{2}.*\\x[0-9a-fA-F]{2}|\\[0-7]{3}.*\\[0-7]{3}/.test(a),
      );
    default:
      return false;
  }
}

export function isDownload(inv: Invocation): boolean {
  return DOWNLOADERS.has(inv.head);
}
