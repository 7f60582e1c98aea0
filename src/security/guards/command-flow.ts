/**
 * Script-level rules: where a command writes, what flows through pipelines into interpreters
 * or network tools, files downloaded and then run, credentials that meet the network, and
 * functions that call themselves in the background (fork bombs).
 */
import {
  HISTORY_FILE,
  invsIn,
  q,
  READ_ONLY_KEY_USERS,
  type RuleContext,
  SECRET_VAR,
  show,
} from './command-catalogue.ts';
import { fedText, feedText } from './command-code.ts';
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
  SHELLS,
} from './command-invocations.ts';
import { classifyPath, secretKind } from './command-paths.ts';

/** A redirection or word naming /dev/tcp or /dev/udp. */
export function devTcp(ctx: RuleContext, where: string): void {
  const shell = ctx.invs
    .flat()
    .some((i) => SHELLS.has(i.head) || i.head === 'exec' || i.wrappers.includes('exec'));
  if (shell) ctx.reasons.add('reverse_shell', `a shell talks to ${q(where)}`);
  else ctx.reasons.add('credential_exfiltration', `raw network connection through ${q(where)}`, 70);
}

/** Paths a command writes to, by command. */
export function writeTargets(inv: Invocation): string[] {
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

export function writeRules(ctx: RuleContext, all: readonly Invocation[]): void {
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

export function pipelineRules(ctx: RuleContext): void {
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
export function downloadRules(ctx: RuleContext, all: readonly Invocation[]): void {
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

export function exfiltrationRules(ctx: RuleContext, all: readonly Invocation[]): void {
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

export function forkBombRule(ctx: RuleContext): void {
  for (const fn of ctx.walk.functions) {
    const self = fn.nodes
      .flatMap((n) => ctx.invs[n] ?? [])
      .filter((i) => i.head === fn.name || i.argv[0] === fn.name);
    if (self.some((i) => i.node.stages > 1 || i.node.background)) {
      ctx.reasons.add('fork_bomb', `function ${q(fn.name)} starts copies of itself without end`);
    }
  }
}
