/**
 * Rules for code a command runs: words in an execution position (`$(curl …)` as a command
 * name, `sh -c` text, `eval`, `source`), interpreters and their `-c`/`-e` program text, and
 * text piped or here-doc'd into an interpreter. Shell text is handed back to command-risk.ts
 * through `ctx.payload` and analysed like a command of its own; program text for
 * python/perl/ruby/node/php gets pattern heuristics.
 */
import { ENV_GENERATORS, invsIn, q, type RuleContext, show } from './command-catalogue.ts';
import {
  interpreterUse,
  type Invocation,
  isDecoder,
  isDownload,
  SHELLS,
} from './command-invocations.ts';
import type { WordView } from './command-walk.ts';

/** A word in an execution position (command name, sh -c text, eval argument, source file). */
export function execWord(ctx: RuleContext, w: WordView, what: string): void {
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

export function evalRule(ctx: RuleContext, inv: Invocation): void {
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

export function interpreterRule(ctx: RuleContext, inv: Invocation): void {
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
export function fedText(inv: Invocation): string | null {
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

export function feedText(
  ctx: RuleContext,
  inv: Invocation,
  family: string,
  text: string,
  label = `${inv.head} here-document`,
): void {
  if (family === 'shell') ctx.payload(text, label);
  else inlineCode(ctx, inv.head, text);
}

export const SYSTEM_CALL =
  /(?:system|popen|exec|execSync|spawnSync|check_output|check_call|call|run|Popen|getoutput|getstatusoutput|shell_exec|passthru)\s*\(\s*\[?\s*(['"])([^'"\n]{1,400})\1/g;

/** Heuristics for program text given to python/perl/ruby/node/php (-c, -e, -r, here-doc). */
export function inlineCode(ctx: RuleContext, head: string, raw: string): void {
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
