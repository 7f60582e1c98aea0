/**
 * The Node.js versions Warden runs on, checked by the `warden` executable before it loads
 * anything native: better-sqlite3 crashes older runtimes while loading (a bare "Segmentation
 * fault", nothing to act on). Plain code with no imports, so it runs on any Node.
 */
export const MINIMUM_NODE = { major: 22, minor: 12 } as const;

/** A message saying what to do when `version` (process.versions.node) is too old; else null. */
export function nodeVersionProblem(version: string): string | null {
  const [major = 0, minor = 0] = version.split('.').map((part) => Number.parseInt(part, 10));
  if (major > MINIMUM_NODE.major || (major === MINIMUM_NODE.major && minor >= MINIMUM_NODE.minor))
    return null;
  const needed = `${MINIMUM_NODE.major}.${MINIMUM_NODE.minor}`;
  return [
    `warden needs Node.js ${needed} or newer; this is Node.js ${version} (${process.execPath}).`,
    'In a Warden checkout, run `source scripts/use-node.sh` in this shell: it installs Node 24 LTS',
    'from the npm registry into a cache directory and puts it first on PATH (your system Node is',
    "left alone); or use the repository's ./warden launcher, which does the same. Otherwise install",
    `Node.js ${needed}+ (e.g. Node 24 LTS) and run warden with it.`,
    '',
  ].join('\n');
}
