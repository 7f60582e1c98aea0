/**
 * Flattens a parsed script ({@link parseShell}) into the simple commands it can run, in source
 * order, with their words resolved, their pipeline position, the function they belong to, and
 * the commands of every substitution inside them. command-rules.ts scores this view.
 *
 * Word values come in two forms. `strict` is the word when it is fully literal (no expansion,
 * no unquoted glob or brace list), else null: it feeds the argv that allow-prefix policies
 * match, where a guess must never pass for a fact. `guess` resolves what can be guessed (a
 * variable assigned a literal earlier in the script, `$HOME` and `~` as `~`, `$IFS` as a blank)
 * and shows the rest as `$NAME` or `$(…)`: the risk rules read it, so `a=rm; $a -rf /` and
 * `rm${IFS}-rf${IFS}/` are still recognised.
 */
import type { Command, Redirect, Script, Word } from './shell-ast.ts';

/** Marks a word of `CommandRisk.commands` that is not literal. */
export const DYNAMIC = '<dynamic>';

export interface WordView {
  readonly strict: string | null;
  readonly guess: string;
  /** Names of the parameters the word expands. */
  readonly params: readonly string[];
  /** Indexes (into `Walk.nodes`) of the commands inside the word's substitutions. */
  readonly substs: readonly number[];
  /** The word holds a `<(…)` or `>(…)`. */
  readonly procsubst: boolean;
  /** The guess split as the shell would split it (unquoted brace list, `$IFS`). */
  readonly fields: readonly string[];
}

export interface RedirectView {
  readonly op: string;
  readonly fd: string | null;
  readonly target: WordView;
  readonly heredoc: WordView | null;
}

export interface CmdNode {
  readonly index: number;
  readonly words: readonly WordView[];
  /** Strict argv, {@link DYNAMIC} for words that are not literal. */
  readonly argv: readonly string[];
  /** Guessed argv (brace lists and `$IFS` split), with the word each element came from. */
  readonly guess: readonly string[];
  readonly guessWords: readonly WordView[];
  readonly assigns: readonly { readonly name: string; readonly value: WordView | null }[];
  readonly redirects: readonly RedirectView[];
  readonly pipeline: number;
  readonly stage: number;
  readonly stages: number;
  readonly background: boolean;
  readonly fn: string | null;
  /** Inside a command or process substitution. */
  readonly nested: boolean;
}

export interface PipelineView {
  /** Per stage: every command the stage runs, and the stage's own simple command if any. */
  readonly stages: { nodes: number[]; simple: number | null }[];
}

export interface Walk {
  readonly nodes: CmdNode[];
  readonly pipelines: PipelineView[];
  readonly functions: { name: string; nodes: number[] }[];
  /** Every redirection, including those of compound commands. */
  readonly redirects: RedirectView[];
  /** Structure counts for `CommandRisk.simple`. */
  statements: number;
  compound: boolean;
}

interface Ctx {
  readonly fn: string | null;
  readonly nested: boolean;
  readonly background: boolean;
  readonly pipeline: number;
  readonly stage: number;
  readonly stages: number;
}

const DECLARE = new Set(['export', 'declare', 'typeset', 'local', 'readonly']);
const BRACE_LIST = /^([^{}]*)\{([^{}]*,[^{}]*)\}([^{}]*)$/;

/**
 * Walks `script`. `home` (when known) makes `~` literal in strict argv; `$PWD` is guessed as
 * `workspace`.
 */
export function walkScript(script: Script, home: string | null, workspace = '.'): Walk {
  const walk: Walk = {
    nodes: [],
    pipelines: [],
    functions: [],
    redirects: [],
    statements: script.length,
    compound: false,
  };
  const vars = new Map<string, string>();
  const root: Ctx = {
    fn: null,
    nested: false,
    background: false,
    pipeline: -1,
    stage: 0,
    stages: 0,
  };

  const word = (w: Word, ctx: Ctx): WordView => {
    let strict: string | null = '';
    let guess = '';
    const params: string[] = [];
    const substs: number[] = [];
    let procsubst = false;
    let ifs = false;
    const nestedCtx = { ...ctx, nested: true };
    for (const p of w.parts) {
      switch (p.kind) {
        case 'lit':
          if (!p.quoted && /[*?[]/.test(p.value)) strict = null;
          if (strict !== null) strict += p.value;
          guess += p.value;
          break;
        case 'tilde':
          strict = home !== null && p.user === '' && strict === '' ? home : null;
          guess += `~${p.user}`;
          break;
        case 'param': {
          strict = null;
          params.push(p.name);
          if (p.inner !== null) substs.push(...word(p.inner, ctx).substs);
          const known = vars.get(p.name);
          if (p.name === 'HOME') guess += '~';
          else if (p.name === 'PWD') guess += workspace;
          else if (p.name === 'IFS') {
            guess += ' ';
            ifs = true;
          } else guess += known ?? `$${p.name}`;
          break;
        }
        case 'cmdsubst':
        case 'procsubst': {
          strict = null;
          const before = walk.nodes.length;
          list(p.body, nestedCtx);
          for (let i = before; i < walk.nodes.length; i++) substs.push(i);
          guess += p.kind === 'cmdsubst' ? '$(…)' : `${p.op}(…)`;
          procsubst ||= p.kind === 'procsubst';
          break;
        }
        case 'arith':
          strict = null;
          substs.push(...word(p.inner, ctx).substs);
          guess += '$((…))';
          break;
      }
    }
    const brace = w.parts.length === 1 && w.parts[0]?.kind === 'lit' && !w.parts[0].quoted;
    const m = brace ? BRACE_LIST.exec(guess) : null;
    let fields = [guess];
    if (m !== null) {
      strict = null;
      if (m[1] === '' && m[3] === '') fields = m[2]!.split(',');
    } else if (ifs) fields = guess.split(' ').filter((f) => f !== '');
    return { strict, guess, params, substs, procsubst, fields };
  };

  const redirect = (r: Redirect, ctx: Ctx): RedirectView => {
    const view = {
      op: r.op,
      fd: r.fd,
      target: word(r.target, ctx),
      heredoc: r.heredoc === null ? null : word(r.heredoc, ctx),
    };
    walk.redirects.push(view);
    return view;
  };

  const simple = (cmd: Extract<Command, { type: 'simple' }>, ctx: Ctx): number => {
    const assigns = cmd.assigns.map((a) => ({
      name: a.name,
      value: a.value === null ? null : word(a.value, ctx),
      array: a.array?.map((w) => word(w, ctx)) ?? null,
    }));
    const words = cmd.words.map((w) => word(w, ctx));
    const redirects = cmd.redirects.map((r) => redirect(r, ctx));
    const guess: string[] = [];
    const guessWords: WordView[] = [];
    for (const w of words) {
      for (const g of w.fields) {
        guess.push(g);
        guessWords.push(w);
      }
    }
    const declared: { name: string; value: WordView | null }[] = assigns.map((a) => ({
      name: a.name,
      value: a.value,
    }));
    if (words.length === 0) {
      for (const a of assigns) setVar(a.name, a.value);
    } else if (DECLARE.has(guess[0] ?? '')) {
      for (const w of words.slice(1)) {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(w.guess);
        if (m === null) continue;
        const value = { ...w, strict: w.strict === null ? null : m[2]!, guess: m[2]! };
        declared.push({ name: m[1]!, value });
        setVar(m[1]!, value);
      }
    }
    const node: CmdNode = {
      index: walk.nodes.length,
      words,
      argv: words.map((w) => w.strict ?? DYNAMIC),
      guess,
      guessWords,
      assigns: declared,
      redirects,
      pipeline: ctx.pipeline,
      stage: ctx.stage,
      stages: ctx.stages,
      background: ctx.background,
      fn: ctx.fn,
      nested: ctx.nested,
    };
    walk.nodes.push(node);
    return node.index;
  };

  const setVar = (name: string, value: WordView | null) => {
    if (value === null) vars.set(name, '');
    else vars.set(name, value.guess);
  };

  const command = (cmd: Command, ctx: Ctx): number | null => {
    switch (cmd.type) {
      case 'simple':
        return simple(cmd, ctx);
      case 'function': {
        walk.compound = true;
        const before = walk.nodes.length;
        const inner = { ...ctx, fn: cmd.name };
        command(cmd.body, inner);
        walk.functions.push({
          name: cmd.name,
          nodes: Array.from({ length: walk.nodes.length - before }, (_, i) => before + i),
        });
        return null;
      }
      case 'compound':
        walk.compound = true;
        for (const w of cmd.words) word(w, ctx);
        if (cmd.keyword === 'for' || cmd.keyword === 'select') {
          const name = /^[A-Za-z_]\w*/.exec(cmd.words[0]?.text ?? '');
          if (name !== null) vars.delete(name[0]);
        }
        for (const body of cmd.bodies) list(body, ctx);
        for (const r of cmd.redirects) redirect(r, ctx);
        return null;
    }
  };

  const list = (stmts: Script, ctx: Ctx): void => {
    for (const stmt of stmts) {
      for (const pipe of stmt.pipelines) {
        const id = walk.pipelines.length;
        const view: PipelineView = { stages: [] };
        walk.pipelines.push(view);
        pipe.commands.forEach((cmd, stage) => {
          const before = walk.nodes.length;
          const own = command(cmd, {
            ...ctx,
            background: ctx.background || stmt.background,
            pipeline: id,
            stage,
            stages: pipe.commands.length,
          });
          const nodes = Array.from({ length: walk.nodes.length - before }, (_, i) => before + i);
          view.stages.push({ nodes, simple: own });
        });
      }
    }
  };

  list(script, root);
  return walk;
}
