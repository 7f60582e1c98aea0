/**
 * The syntax tree shell-parse.ts builds: lists of statements, pipelines, simple and compound
 * commands, functions, words made of literal and expansion parts.
 */

/** A part of a word after lexing. `quoted` literals came from quotes or backslash escapes. */
export type WordPart =
  | { readonly kind: 'lit'; readonly value: string; readonly quoted: boolean }
  | { readonly kind: 'tilde'; readonly user: string }
  | { readonly kind: 'param'; readonly name: string; readonly inner: Word | null }
  | { readonly kind: 'cmdsubst'; readonly body: Script }
  | { readonly kind: 'procsubst'; readonly op: '<' | '>'; readonly body: Script }
  | { readonly kind: 'arith'; readonly inner: Word };

export interface Word {
  readonly text: string;
  readonly parts: readonly WordPart[];
}

export interface Redirect {
  /** The file descriptor or `{var}` before the operator, or null. */
  readonly fd: string | null;
  /** `>`, `>>`, `<`, `<<`, `<<-`, `<<<`, `<>`, `<&`, `>&`, `>|`, `&>`, `&>>`. */
  readonly op: string;
  readonly target: Word;
  /** The here-document body (for `<<` and `<<-`), filled in when the body is read. */
  heredoc: Word | null;
}

export interface Assign {
  readonly name: string;
  readonly value: Word | null;
  readonly array: readonly Word[] | null;
}

export type Command =
  | {
      readonly type: 'simple';
      readonly assigns: readonly Assign[];
      readonly words: readonly Word[];
      readonly redirects: readonly Redirect[];
    }
  | {
      readonly type: 'compound';
      /** `(`, `{`, `if`, `while`, `until`, `for`, `select`, `case`, `((`, `[[`. */
      readonly keyword: string;
      readonly words: readonly Word[];
      readonly bodies: readonly Script[];
      readonly redirects: readonly Redirect[];
    }
  | { readonly type: 'function'; readonly name: string; readonly body: Command };

export interface Pipeline {
  readonly negated: boolean;
  readonly commands: readonly Command[];
}

export interface Stmt {
  /** Index of the statement's first character. */
  readonly start: number;
  readonly pipelines: readonly Pipeline[];
  readonly ops: readonly ('&&' | '||')[];
  readonly background: boolean;
}

export type Script = readonly Stmt[];

/** Deepest nesting of commands, substitutions and compound commands accepted. */
export const MAX_NESTING = 64;

export class ShellSyntaxError extends Error {
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(`${message} (at character ${offset})`);
    this.name = 'ShellSyntaxError';
    this.offset = offset;
  }
}
