/** The flag syntax every benchmark accepts: `--name value`, `--name=value`, and bare `--quick`. */

export interface Flags {
  readonly quick: boolean;
  has(name: string): boolean;
  /** A non-negative number, or `fallback` when the flag is absent. */
  num(name: string, fallback: number): number;
  str(name: string, fallback: string): string;
  /** A comma-separated list. */
  list(name: string, fallback: readonly string[]): string[];
}

/** Flags that take no value. */
const BARE = new Set(['quick']);

export function parseFlags(argv: readonly string[]): Flags {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (BARE.has(a.slice(2))) flags.set(a.slice(2), 'true');
    else flags.set(a.slice(2), argv[++i] ?? '');
  }
  return {
    quick: flags.get('quick') === 'true',
    has: (name) => flags.has(name),
    num(name, fallback) {
      const v = flags.get(name);
      if (v === undefined) return fallback;
      const x = Number(v);
      if (v === '' || !Number.isFinite(x) || x < 0) throw new Error(`--${name} expects a number`);
      return x;
    },
    str: (name, fallback) => flags.get(name) ?? fallback,
    list(name, fallback) {
      const v = flags.get(name);
      if (v === undefined) return [...fallback];
      return v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    },
  };
}
