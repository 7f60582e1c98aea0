/**
 * A recursive-descent parser for the bash command language, enough for risk analysis: lists
 * (`;`, `&`, `&&`, `||`, newlines), pipelines (`|`, `|&`, `!`), simple commands (assignments,
 * words, redirections), subshells, brace groups, `if`/`while`/`until`/`for`/`select`/`case`,
 * functions, `(( ))`, `[[ ]]`, here-documents, and the word grammar (quotes, `$'…'`, `$name`,
 * `${…}`, `$(…)`, backticks, `$((…))`, `<(…)`, `>(…)`, `~`).
 *
 * Why not sh-syntax alone: sh-syntax 0.7 (mvdan/sh compiled to WASM) serialises only the top
 * level of its AST (statement spans, background flags, redirections). command-risk.ts runs it
 * first as the authoritative syntax check and compares its top-level statements with this
 * parser's; a disagreement is scored as a risk, so a construct this parser misreads fails
 * closed instead of hiding commands.
 *
 * Positions are UTF-16 indexes into the parsed text. Synchronous, linear in the input, and
 * bounded in nesting ({@link MAX_NESTING}).
 */

import { decodeAnsiC } from './shell-ansi.ts';
import {
  type Assign,
  type Command,
  MAX_NESTING,
  type Pipeline,
  type Redirect,
  type Script,
  ShellSyntaxError,
  type Stmt,
  type Word,
  type WordPart,
} from './shell-ast.ts';

export { ShellSyntaxError } from './shell-ast.ts';

/** Parses a whole script. Throws {@link ShellSyntaxError}. */
export function parseShell(text: string): Script {
  return new Parser(text, 0).parseAll();
}

const META = new Set([' ', '\t', '\n', ';', '&', '|', '(', ')', '<', '>']);
const REDIRECT_OPS = ['<<<', '<<-', '<<', '<>', '<&', '<', '>>', '>&', '>|', '>', '&>>', '&>'];
const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '$', '!', '-', '0']);
const ASSIGN_RE = /[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]\n]*\])?\+?=/y;
const PLAIN_TOKEN_RE = /[^\s;&|()<>"'`$\\]+/y;
const NAME_RE = /[A-Za-z_][A-Za-z0-9_]*/y;

type Mode = 'word' | 'dquote' | 'heredoc' | 'brace';

interface PendingHeredoc {
  readonly redirect: Redirect;
  readonly delim: string;
  readonly strip: boolean;
  readonly expand: boolean;
}

class Parser {
  private pos = 0;
  private readonly pending: PendingHeredoc[] = [];
  private readonly src: string;
  private depth: number;

  constructor(src: string, depth: number) {
    this.src = src;
    this.depth = depth;
  }

  parseAll(): Script {
    const script = this.parseScript(new Set(), false);
    this.skipNewlines();
    if (this.pos < this.src.length) this.fail(`unexpected '${this.src[this.pos]}'`);
    return script;
  }

  // ---- lexing helpers ----

  private fail(message: string): never {
    throw new ShellSyntaxError(message, this.pos);
  }

  private enter(): void {
    if (++this.depth > MAX_NESTING) this.fail(`nesting deeper than ${MAX_NESTING}`);
  }

  private skipSpace(): void {
    const s = this.src;
    while (this.pos < s.length) {
      const c = s[this.pos];
      if (c === ' ' || c === '\t' || c === '\r') this.pos++;
      else if (c === '\\' && s[this.pos + 1] === '\n') this.pos += 2;
      else if (c === '#') {
        const nl = s.indexOf('\n', this.pos);
        this.pos = nl === -1 ? s.length : nl;
      } else break;
    }
  }

  private skipNewlines(): void {
    for (;;) {
      this.skipSpace();
      if (this.src[this.pos] !== '\n') return;
      this.newline();
    }
  }

  /** Consumes a newline and reads the bodies of here-documents opened on its line. */
  private newline(): void {
    this.pos++;
    const pending = this.pending.splice(0);
    for (const doc of pending) this.readHeredoc(doc);
  }

  private readHeredoc(doc: PendingHeredoc): void {
    const s = this.src;
    let body = '';
    while (this.pos < s.length) {
      const nl = s.indexOf('\n', this.pos);
      const end = nl === -1 ? s.length : nl;
      const line = s.slice(this.pos, end);
      this.pos = nl === -1 ? s.length : nl + 1;
      const cmp = doc.strip ? line.replace(/^\t+/, '') : line;
      if (cmp === doc.delim) break;
      body += `${cmp}\n`;
    }
    doc.redirect.heredoc = doc.expand
      ? new Parser(body, this.depth).readParts('heredoc')
      : { text: body, parts: [{ kind: 'lit', value: body, quoted: true }] };
  }

  /** The unquoted token at the cursor when it stands alone (reserved-word checks). */
  private peekToken(): string | null {
    PLAIN_TOKEN_RE.lastIndex = this.pos;
    const m = PLAIN_TOKEN_RE.exec(this.src);
    if (m === null) return null;
    const next = this.src[this.pos + m[0].length];
    return next === undefined || META.has(next) || next === '\r' ? m[0] : null;
  }

  private expectToken(word: string): void {
    this.skipNewlines();
    if (this.peekToken() !== word) this.fail(`expected '${word}'`);
    this.pos += word.length;
  }

  // ---- grammar ----

  /** Statements until end of input, `)` (when `paren`) or a reserved word in `stops`. */
  private parseScript(stops: ReadonlySet<string>, paren: boolean): Script {
    this.enter();
    const stmts: Stmt[] = [];
    const s = this.src;
    for (;;) {
      this.skipNewlines();
      if (this.pos >= s.length) break;
      if (paren && s[this.pos] === ')') break;
      if (stops.has(';;') && (s.startsWith(';;', this.pos) || s.startsWith(';&', this.pos))) break;
      const tok = this.peekToken();
      if (tok !== null && stops.has(tok)) break;
      const start = this.pos;
      const { pipelines, ops } = this.parseAndOr();
      this.skipSpace();
      let background = false;
      const c = s[this.pos];
      if (c === '&' && s[this.pos + 1] !== '&' && s[this.pos + 1] !== '>') {
        background = true;
        this.pos++;
      } else if (c === ';' && s[this.pos + 1] !== ';' && s[this.pos + 1] !== '&') {
        this.pos++;
      } else if (c === '\n') {
        this.newline();
      } else if (c !== undefined && c !== ')' && c !== ';') {
        const t = this.peekToken();
        if (t === null || !stops.has(t)) this.fail(`unexpected '${c}'`);
      }
      stmts.push({ start, pipelines, ops, background });
    }
    this.depth--;
    return stmts;
  }

  private parseAndOr(): { pipelines: Pipeline[]; ops: ('&&' | '||')[] } {
    const pipelines = [this.parsePipeline()];
    const ops: ('&&' | '||')[] = [];
    for (;;) {
      this.skipSpace();
      const two = this.src.slice(this.pos, this.pos + 2);
      if (two !== '&&' && two !== '||') break;
      this.pos += 2;
      ops.push(two);
      this.skipNewlines();
      pipelines.push(this.parsePipeline());
    }
    return { pipelines, ops };
  }

  private parsePipeline(): Pipeline {
    this.skipSpace();
    let negated = false;
    for (;;) {
      const tok = this.peekToken();
      if (tok === '!') negated = !negated;
      else if (tok !== 'time') break;
      this.pos += tok.length;
      this.skipSpace();
      if (tok === 'time' && this.peekToken() === '-p') this.pos += 2;
      this.skipSpace();
    }
    const commands = [this.parseCommand()];
    for (;;) {
      this.skipSpace();
      const s = this.src;
      if (s[this.pos] !== '|' || s[this.pos + 1] === '|') break;
      this.pos += s[this.pos + 1] === '&' ? 2 : 1;
      this.skipNewlines();
      commands.push(this.parseCommand());
    }
    return { negated, commands };
  }

  private parseCommand(): Command {
    this.skipSpace();
    const s = this.src;
    if (s[this.pos] === '(') {
      if (s[this.pos + 1] === '(') {
        this.pos += 2;
        const inner = this.readArith();
        return this.compound('((', [inner], []);
      }
      this.pos++;
      const body = this.parseScript(new Set(), true);
      if (s[this.pos] !== ')') this.fail("expected ')'");
      this.pos++;
      return this.compound('(', [], [body]);
    }
    switch (this.peekToken()) {
      case '{': {
        this.pos++;
        const body = this.parseScript(new Set(['}']), false);
        this.expectToken('}');
        return this.compound('{', [], [body]);
      }
      case 'if':
        return this.parseIf();
      case 'while':
      case 'until':
        return this.parseWhile();
      case 'for':
      case 'select':
        return this.parseFor();
      case 'case':
        return this.parseCase();
      case 'function':
        return this.parseFunctionKeyword();
      case '[[':
        return this.parseTest();
      case 'then':
      case 'elif':
      case 'else':
      case 'fi':
      case 'do':
      case 'done':
      case 'esac':
      case '}':
      case 'in':
        return this.fail(`unexpected '${this.peekToken() ?? ''}'`);
      default:
        return this.parseSimple();
    }
  }

  private compound(keyword: string, words: Word[], bodies: Script[]): Command {
    return { type: 'compound', keyword, words, bodies, redirects: this.parseRedirects() };
  }

  private parseRedirects(): Redirect[] {
    const out: Redirect[] = [];
    for (;;) {
      this.skipSpace();
      const r = this.tryRedirect();
      if (r === null) return out;
      out.push(r);
    }
  }

  private parseIf(): Command {
    this.pos += 2;
    const bodies: Script[] = [this.parseScript(new Set(['then']), false)];
    this.expectToken('then');
    bodies.push(this.parseScript(new Set(['elif', 'else', 'fi']), false));
    for (;;) {
      this.skipNewlines();
      const tok = this.peekToken();
      if (tok === 'elif') {
        this.pos += 4;
        bodies.push(this.parseScript(new Set(['then']), false));
        this.expectToken('then');
        bodies.push(this.parseScript(new Set(['elif', 'else', 'fi']), false));
      } else if (tok === 'else') {
        this.pos += 4;
        bodies.push(this.parseScript(new Set(['fi']), false));
      } else break;
    }
    this.expectToken('fi');
    return this.compound('if', [], bodies);
  }

  private parseWhile(): Command {
    const keyword = this.peekToken() ?? 'while';
    this.pos += keyword.length;
    const cond = this.parseScript(new Set(['do']), false);
    this.expectToken('do');
    const body = this.parseScript(new Set(['done']), false);
    this.expectToken('done');
    return this.compound(keyword, [], [cond, body]);
  }

  private parseFor(): Command {
    const keyword = this.peekToken() ?? 'for';
    this.pos += keyword.length;
    this.skipSpace();
    const words: Word[] = [];
    if (this.src.startsWith('((', this.pos)) {
      this.pos += 2;
      words.push(this.readArith());
    } else {
      const name = this.readWord();
      if (name === null) this.fail(`expected a name after '${keyword}'`);
      this.skipNewlines();
      if (this.peekToken() === 'in') {
        this.pos += 2;
        for (;;) {
          this.skipSpace();
          const w = this.readWord();
          if (w === null) break;
          words.push(w);
        }
      }
    }
    this.skipSpace();
    if (this.src[this.pos] === ';') this.pos++;
    this.skipNewlines();
    if (this.peekToken() === '{') {
      this.pos++;
      const body = this.parseScript(new Set(['}']), false);
      this.expectToken('}');
      return this.compound(keyword, words, [body]);
    }
    this.expectToken('do');
    const body = this.parseScript(new Set(['done']), false);
    this.expectToken('done');
    return this.compound(keyword, words, [body]);
  }

  private parseCase(): Command {
    this.pos += 4;
    this.skipSpace();
    const subject = this.readWord();
    if (subject === null) this.fail("expected a word after 'case'");
    const words: Word[] = [subject];
    const bodies: Script[] = [];
    this.expectToken('in');
    const s = this.src;
    for (;;) {
      this.skipNewlines();
      if (this.peekToken() === 'esac') break;
      if (this.pos >= s.length) this.fail("expected 'esac'");
      if (s[this.pos] === '(') this.pos++;
      for (;;) {
        this.skipSpace();
        const pattern = this.readWord();
        if (pattern === null) this.fail('expected a case pattern');
        words.push(pattern);
        this.skipSpace();
        if (s[this.pos] !== '|') break;
        this.pos++;
      }
      if (s[this.pos] !== ')') this.fail("expected ')' after a case pattern");
      this.pos++;
      bodies.push(this.parseScript(new Set([';;', 'esac']), false));
      this.skipSpace();
      for (const term of [';;&', ';;', ';&']) {
        if (s.startsWith(term, this.pos)) {
          this.pos += term.length;
          break;
        }
      }
    }
    this.expectToken('esac');
    return this.compound('case', words, bodies);
  }

  private parseFunctionKeyword(): Command {
    this.pos += 8;
    this.skipSpace();
    const name = this.readWord();
    if (name === null) this.fail("expected a name after 'function'");
    this.skipSpace();
    if (this.src[this.pos] === '(') {
      this.pos++;
      this.skipSpace();
      if (this.src[this.pos] !== ')') this.fail("expected ')'");
      this.pos++;
    }
    this.skipNewlines();
    return { type: 'function', name: name.text, body: this.parseCommand() };
  }

  private parseTest(): Command {
    this.pos += 2;
    const words: Word[] = [];
    const s = this.src;
    for (;;) {
      this.skipNewlines();
      if (this.pos >= s.length) this.fail("expected ']]'");
      if (this.peekToken() === ']]') {
        this.pos += 2;
        break;
      }
      const prev = words.at(-1)?.text;
      const op = ['&&', '||', '(', ')', '!', '<', '>'].find((o) => s.startsWith(o, this.pos));
      if (prev === '=~') {
        // A regex may hold unquoted parentheses and bars: read to a blank at depth 0.
        const start = this.pos;
        let depth = 0;
        while (this.pos < s.length) {
          const c = s[this.pos];
          if (c === '\\') this.pos++;
          else if (c === '(') depth++;
          else if (c === ')') depth--;
          else if ((c === ' ' || c === '\t' || c === '\n') && depth <= 0) break;
          this.pos++;
        }
        const text = s.slice(start, this.pos);
        words.push({ text, parts: [{ kind: 'lit', value: text, quoted: true }] });
      } else if (op !== undefined) {
        this.pos += op.length;
        words.push({ text: op, parts: [{ kind: 'lit', value: op, quoted: false }] });
      } else {
        const w = this.readWord();
        if (w === null) this.fail(`unexpected '${s[this.pos]}' in [[ ]]`);
        words.push(w);
      }
    }
    return this.compound('[[', words, []);
  }

  private parseSimple(): Command {
    const assigns: Assign[] = [];
    const words: Word[] = [];
    const redirects: Redirect[] = [];
    const s = this.src;
    for (;;) {
      this.skipSpace();
      if (this.pos >= s.length) break;
      const c = s[this.pos] ?? '';
      const redirect = this.tryRedirect();
      if (redirect !== null) {
        redirects.push(redirect);
        continue;
      }
      if (c === '(' && words.length === 1 && assigns.length === 0) {
        // `name () compound`: a function definition.
        this.pos++;
        this.skipSpace();
        if (s[this.pos] !== ')') this.fail("expected ')' in a function definition");
        this.pos++;
        this.skipNewlines();
        return { type: 'function', name: words[0]?.text ?? '', body: this.parseCommand() };
      }
      if (META.has(c) && !((c === '<' || c === '>') && s[this.pos + 1] === '(')) break;
      if (words.length === 0) {
        ASSIGN_RE.lastIndex = this.pos;
        const m = ASSIGN_RE.exec(s);
        if (m !== null) {
          this.pos += m[0].length;
          assigns.push(this.readAssignValue(m[0].replace(/\+?=$/, '').replace(/\[.*$/, '')));
          continue;
        }
      }
      const w = this.readWord();
      if (w === null) this.fail(`unexpected '${c}'`);
      words.push(w);
    }
    if (assigns.length === 0 && words.length === 0 && redirects.length === 0) {
      this.fail(this.pos >= s.length ? 'unexpected end of input' : `unexpected '${s[this.pos]}'`);
    }
    return { type: 'simple', assigns, words, redirects };
  }

  private readAssignValue(name: string): Assign {
    const s = this.src;
    if (s[this.pos] === '(') {
      this.pos++;
      const array: Word[] = [];
      for (;;) {
        this.skipNewlines();
        if (s[this.pos] === ')') break;
        const w = this.readWord();
        if (w === null) this.fail("expected ')' to close an array");
        array.push(w);
      }
      this.pos++;
      return { name, value: null, array };
    }
    return { name, value: this.readWord(), array: null };
  }

  private tryRedirect(): Redirect | null {
    const s = this.src;
    const start = this.pos;
    let fd: string | null = null;
    let i = this.pos;
    while (i < s.length && s[i]! >= '0' && s[i]! <= '9') i++;
    if (i > this.pos && (s[i] === '<' || s[i] === '>')) fd = s.slice(this.pos, i);
    else if (s[i] === '{') {
      NAME_RE.lastIndex = i + 1;
      const m = NAME_RE.exec(s);
      if (m !== null && s[i + 1 + m[0].length] === '}') {
        const j = i + 2 + m[0].length;
        if (s[j] === '<' || s[j] === '>') {
          fd = s.slice(i, j);
          i = j;
        } else i = this.pos;
      }
    } else i = this.pos;
    if (s[i + 1] === '(' && (s[i] === '<' || s[i] === '>')) return null;
    const op = REDIRECT_OPS.find((o) => s.startsWith(o, i));
    if (op === undefined) {
      this.pos = start;
      return null;
    }
    this.pos = i + op.length;
    this.skipSpace();
    const target = this.readWord();
    if (target === null) this.fail(`expected a word after '${op}'`);
    const redirect: Redirect = { fd, op, target, heredoc: null };
    if (op === '<<' || op === '<<-') {
      const quoted = target.parts.some((p) => p.kind === 'lit' && p.quoted);
      const delim = target.parts.map((p) => (p.kind === 'lit' ? p.value : '')).join('');
      this.pending.push({ redirect, delim, strip: op === '<<-', expand: !quoted });
    }
    return redirect;
  }

  // ---- words ----

  /** One word at the cursor (null when none starts here). */
  private readWord(): Word | null {
    const s = this.src;
    const c = s[this.pos];
    if ((c === '<' || c === '>') && s[this.pos + 1] === '(') {
      const start = this.pos;
      this.pos += 2;
      const body = this.parseScript(new Set(), true);
      if (s[this.pos] !== ')') this.fail("expected ')' to close a process substitution");
      this.pos++;
      return { text: s.slice(start, this.pos), parts: [{ kind: 'procsubst', op: c, body }] };
    }
    const word = this.readParts('word');
    return word.text === '' ? null : word;
  }

  /** Word parts until the mode's terminator (left unconsumed). */
  readParts(mode: Mode): Word {
    const s = this.src;
    const start = this.pos;
    const parts: WordPart[] = [];
    let lit = '';
    let litQuoted = false;
    const flush = () => {
      if (lit !== '') parts.push({ kind: 'lit', value: lit, quoted: litQuoted });
      lit = '';
    };
    const push = (value: string, quoted: boolean) => {
      if (lit !== '' && quoted !== litQuoted) flush();
      litQuoted = quoted;
      lit += value;
    };
    const inQuotes = mode === 'dquote' || mode === 'heredoc';
    let braceDepth = 0;
    while (this.pos < s.length) {
      const c = s[this.pos]!;
      if (mode === 'word' && META.has(c)) break;
      if (mode === 'dquote' && c === '"') break;
      if (mode === 'brace') {
        if (c === '}' && braceDepth === 0) break;
        if (c === '{') braceDepth++;
        if (c === '}') braceDepth--;
      }
      if (c === '\\') {
        const next = s[this.pos + 1];
        if (next === undefined) {
          push('\\', !inQuotes);
          this.pos++;
        } else if (next === '\n') this.pos += 2;
        else if (inQuotes && !'$`"\\'.includes(next)) {
          push(`\\${next}`, true);
          this.pos += 2;
        } else {
          push(next, true);
          this.pos += 2;
        }
      } else if (c === "'" && !inQuotes) {
        const end = s.indexOf("'", this.pos + 1);
        if (end === -1) this.fail('unterminated single quote');
        push(s.slice(this.pos + 1, end), true);
        this.pos = end + 1;
      } else if (c === '"' && !inQuotes) {
        this.pos++;
        const inner = this.readParts('dquote');
        if (s[this.pos] !== '"') this.fail('unterminated double quote');
        this.pos++;
        for (const p of inner.parts) {
          if (p.kind === 'lit') push(p.value, true);
          else {
            flush();
            parts.push(p);
          }
        }
        if (inner.parts.length === 0) push('', true);
      } else if (c === '`') {
        flush();
        parts.push(this.readBacktick());
      } else if (c === '$') {
        const part = this.readDollar(inQuotes);
        if (part.kind === 'lit') push(part.value, part.quoted);
        else {
          flush();
          parts.push(part);
        }
      } else if (c === '~' && this.pos === start && mode === 'word') {
        this.pos++;
        const from = this.pos;
        while (this.pos < s.length && /[A-Za-z0-9._-]/.test(s[this.pos]!)) this.pos++;
        flush();
        parts.push({ kind: 'tilde', user: s.slice(from, this.pos) });
      } else {
        push(c, inQuotes);
        this.pos++;
      }
    }
    flush();
    return { text: s.slice(start, this.pos), parts };
  }

  private readBacktick(): WordPart {
    const s = this.src;
    this.pos++;
    let inner = '';
    for (;;) {
      const c = s[this.pos];
      if (c === undefined) this.fail('unterminated backquote');
      if (c === '`') break;
      if (c === '\\' && '$`\\'.includes(s[this.pos + 1] ?? '')) {
        inner += s[this.pos + 1];
        this.pos += 2;
      } else {
        inner += c;
        this.pos++;
      }
    }
    this.pos++;
    const body = new Parser(inner, this.depth + 1).parseAll();
    return { kind: 'cmdsubst', body };
  }

  private readDollar(inQuotes: boolean): WordPart {
    const s = this.src;
    const next = s[this.pos + 1];
    if (next === '(' && s[this.pos + 2] === '(') {
      this.pos += 3;
      return { kind: 'arith', inner: this.readArith() };
    }
    if (next === '(') {
      this.pos += 2;
      const body = this.parseScript(new Set(), true);
      if (s[this.pos] !== ')') this.fail("expected ')' to close '$('");
      this.pos++;
      return { kind: 'cmdsubst', body };
    }
    if (next === '{') return this.readBraceParam();
    if (next === "'" && !inQuotes) {
      this.pos += 2;
      const decoded = decodeAnsiC(s, this.pos);
      if (decoded === null) this.fail("unterminated $'");
      this.pos = decoded.end;
      return { kind: 'lit', value: decoded.value, quoted: true };
    }
    if (next === '"' && !inQuotes) {
      this.pos++;
      return { kind: 'lit', value: '', quoted: true };
    }
    NAME_RE.lastIndex = this.pos + 1;
    const m = NAME_RE.exec(s);
    if (m !== null) {
      this.pos += 1 + m[0].length;
      return { kind: 'param', name: m[0], inner: null };
    }
    if (next !== undefined && (SPECIAL_PARAMS.has(next) || (next >= '1' && next <= '9'))) {
      this.pos += 2;
      return { kind: 'param', name: next, inner: null };
    }
    this.pos++;
    return { kind: 'lit', value: '$', quoted: inQuotes };
  }

  private readBraceParam(): WordPart {
    const s = this.src;
    this.pos += 2;
    if (s[this.pos] === '#' || s[this.pos] === '!') this.pos++;
    NAME_RE.lastIndex = this.pos;
    const m = NAME_RE.exec(s);
    let name: string;
    if (m !== null) name = m[0];
    else if (/[0-9@*#?$!-]/.test(s[this.pos] ?? '')) {
      const digits = /[0-9]+/y;
      digits.lastIndex = this.pos;
      name = digits.exec(s)?.[0] ?? s[this.pos]!;
    } else this.fail('bad substitution');
    this.pos += name.length;
    let inner: Word | null = null;
    if (s[this.pos] !== '}') {
      inner = this.readParts('brace');
      if (s[this.pos] !== '}') this.fail("expected '}' to close '${'");
    }
    this.pos++;
    return { kind: 'param', name, inner };
  }

  /** The inside of `((…))` / `$((…))` up to the closing `))` (consumed). */
  private readArith(): Word {
    const s = this.src;
    const start = this.pos;
    let depth = 0;
    for (;;) {
      const c = s[this.pos];
      if (c === undefined) this.fail("expected '))'");
      if (c === '(') depth++;
      else if (c === ')') {
        if (depth === 0 && s[this.pos + 1] === ')') break;
        depth--;
      }
      this.pos++;
    }
    const raw = s.slice(start, this.pos);
    this.pos += 2;
    return new Parser(raw, this.depth + 1).readParts('heredoc');
  }
}
