/**
 * Classifies the paths a command names (guessed words, see command-walk.ts) for the risk rules:
 * inside the workspace, scratch, a device, a system path, a sensitive or start-up file in the
 * home directory, somewhere else, or unknown (the path depends on a value only known at run
 * time). Pure string work: nothing here touches the file system, so a symlink inside the
 * workspace that points elsewhere is not seen (the path guard checks real paths).
 */
import { posix } from 'node:path';

export type PathClass =
  | 'inside'
  | 'temp'
  | 'null'
  | 'device'
  | 'network'
  | 'system'
  | 'home'
  | 'sensitive'
  | 'persistence'
  | 'outside'
  | 'unknown';

export interface PathInfo {
  readonly cls: PathClass;
  /** Absolute path (or `~/…` when the home directory is not known); '' when unknown. */
  readonly path: string;
  /** The path is a root of a wide tree: `/`, `/*`, `~`, a top-level system directory, the workspace. */
  readonly wide: boolean;
}

export interface PathEnv {
  /** Absolute workspace path (a placeholder when the caller gave none). */
  readonly workspace: string;
  readonly home: string | null;
}

/** Placeholder workspace: relative paths resolve inside it, `..` can still climb out. */
export const VIRTUAL_WORKSPACE = '/@workspace';

const SYSTEM_TOP = new Set(
  'etc usr bin sbin lib lib32 lib64 libx32 boot sys proc var opt root srv snap home mnt media run System Library Applications private'.split(
    ' ',
  ),
);
const NULL_DEVICES = /^\/dev\/(null|zero|stdout|stderr|stdin|tty|full|random|urandom|fd\/\d+)$/;
const BLOCK_DEVICES =
  /^\/dev\/(sd|hd|vd|xvd|nvme|mmcblk|disk|rdisk|md|dm-|mapper\/|loop|sr|mem$|kmem|port)/;
const TEMP = /^\/(tmp|var\/tmp|dev\/shm|private\/tmp)(\/|$)/;
const SYSTEM_PERSISTENCE =
  /^\/(etc\/(cron|anacrontab|systemd|init\.d|rc\.local|profile|bash\.bashrc|zsh|ld\.so\.preload|sudoers|update-motd\.d|xdg\/autostart)|var\/spool\/cron|lib\/systemd|usr\/lib\/systemd|Library\/Launch)/;
const SYSTEM_SECRETS = /^\/(etc\/(shadow|gshadow|sudoers|ssh\/ssh_host_)|root\/\.ssh)/;
const HOME_PERSISTENCE =
  /^~\/(\.(bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv|zlogin|xinitrc|xprofile)$|\.config\/(autostart|systemd)(\/|$)|Library\/LaunchAgents(\/|$)|\.ssh\/(authorized_keys|rc|config)$)/;
const HOME_SENSITIVE =
  /^~\/(\.ssh|\.aws|\.gnupg|\.kube|\.docker|\.azure|\.config\/gcloud|\.password-store|\.netrc|\.git-credentials|\.npmrc|\.pypirc|\.bash_history|\.zsh_history|\.gitconfig)(\/|$)/;

/** Where the guessed path `guess` points. */
export function classifyPath(guess: string, env: PathEnv): PathInfo {
  let p = guess;
  if (p === '' || p.includes('<(') || p.includes('>(')) return unknown();
  const dollar = p.indexOf('$');
  let dynamic = false;
  if (dollar !== -1) {
    // `/etc/$(x)` still writes under /etc: classify the literal directory before the expansion.
    const cut = p.lastIndexOf('/', dollar);
    if (cut <= 0 && !(cut === 0 && p.startsWith('/'))) return unknown();
    p = p.slice(0, cut + 1);
    dynamic = true;
  }
  let abs: string;
  if (p === '~' || p.startsWith('~/')) {
    abs = env.home === null ? posix.normalize(p) : posix.join(env.home, p.slice(1));
  } else if (p.startsWith('~')) {
    const user = /^~([^/]*)/.exec(p)?.[1] ?? '';
    abs = posix.join(user === 'root' ? '/root' : `/home/${user}`, p.slice(user.length + 1));
  } else if (p.startsWith('/')) abs = posix.normalize(p);
  else abs = posix.join(env.workspace, p);
  if (abs.length > 1 && abs.endsWith('/')) abs = abs.slice(0, -1);
  const info = (cls: PathClass, wide = false): PathInfo => ({
    cls,
    path: abs,
    wide: wide && !dynamic,
  });

  if (abs.startsWith('/dev/')) {
    if (NULL_DEVICES.test(abs)) return info('null');
    if (/^\/dev\/(tcp|udp)\//.test(abs)) return info('network');
    if (BLOCK_DEVICES.test(abs)) return info('device');
    return info('system');
  }
  const ws = env.workspace;
  if (abs === ws || abs.startsWith(ws === '/' ? '/' : `${ws}/`)) {
    const rest = abs.slice(ws.length);
    return info(dynamic ? 'unknown' : 'inside', rest === '' || rest === '/*' || rest === '/.*');
  }
  let tilde: string | null = null;
  if (abs === '~' || abs.startsWith('~/')) tilde = abs;
  else if (env.home !== null && (abs === env.home || abs.startsWith(`${env.home}/`))) {
    tilde = `~${abs.slice(env.home.length)}`;
  }
  if (tilde !== null) {
    if (tilde === '~' || tilde === '~/*' || tilde === '~/.*') return info('home', true);
    if (HOME_PERSISTENCE.test(tilde)) return info('persistence');
    if (HOME_SENSITIVE.test(tilde)) return info('sensitive', tilde.split('/').length <= 2);
    return info('outside');
  }
  if (TEMP.test(abs)) return info('temp');
  if (abs === '/' || abs === '/*' || abs === '/.*') return info('system', true);
  const parts = abs.split('/');
  if (SYSTEM_TOP.has(parts[1] ?? '')) {
    const wide =
      parts.length === 2 || (parts.length === 3 && (parts[2] === '*' || parts[1] === 'home'));
    if (SYSTEM_SECRETS.test(abs)) return info('sensitive', wide);
    if (SYSTEM_PERSISTENCE.test(abs)) return info('persistence', wide);
    if (parts[1] === 'home' && parts.length > 3) return info('outside');
    return info('system', wide);
  }
  return info('outside');

  function unknown(): PathInfo {
    return { cls: 'unknown', path: '', wide: false };
  }
}

/** Secrets a command may read: private keys and cloud credentials, or `.env` files. */
export function secretKind(guess: string, env: PathEnv): 'credential' | 'dotenv' | null {
  if (guess === '' || guess.startsWith('-')) return null;
  const eq = guess.indexOf('@');
  const p = eq >= 0 && eq < 2 ? guess.slice(eq + 1) : guess.replace(/^[A-Za-z_-]+=@?/, '');
  let norm = p;
  if (env.home !== null && p.startsWith(`${env.home}/`)) norm = `~${p.slice(env.home.length)}`;
  if (
    /(^|\/)\.ssh\/(id_[A-Za-z0-9_-]+|[^/]*\.pem|\*)$/.test(norm) ||
    /^(~|\/root|\/home\/[^/]+)\/\.(ssh|aws|gnupg|kube|password-store)\/?$/.test(norm) ||
    /(^|\/)(\.aws\/(credentials|config)|\.kube\/config|\.docker\/config\.json|\.netrc|\.git-credentials|\.pypirc|\.config\/gcloud\/\S*|\.azure\/\S*|\.gnupg\/\S*|\.password-store\/\S*)$/.test(
      norm,
    ) ||
    /^\/etc\/(shadow|gshadow)$|^\/proc\/[^/]+\/environ$|^\/root\/\.ssh\//.test(norm) ||
    /(^|\/)[^/\s]*\.(pem|p12|pfx|key)$|(^|\/)id_(rsa|dsa|ecdsa|ed25519)$/.test(norm)
  ) {
    return 'credential';
  }
  if (
    /(^|\/)\.env(\.[A-Za-z0-9_-]+)?$/.test(norm) &&
    !/\.env\.(example|sample|template|dist)$/.test(norm)
  ) {
    return 'dotenv';
  }
  return null;
}
