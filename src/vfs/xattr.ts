/**
 * overlayfs's xattr marks in a layer: opaque directories, xattr whiteouts, redirects.
 *
 * Rule, as kernel overlayfs (6.8 and later) reads them, under trusted.overlay.* or
 * user.overlay.* (a userxattr mount's):
 *  - a directory is opaque when its overlay.opaque is "y";
 *  - in a lower directory whose overlay.opaque is "x" (or that carries overlay.whiteouts, as
 *    6.7 wrote it), a zero-size regular file carrying overlay.whiteout is a whiteout: the
 *    kernel's listings drop it there and so do ours, and LOOKUP finds nothing;
 *  - elsewhere such a file is a file. The kernel's LOOKUP hides it anywhere while its listing
 *    shows it (a name it then cannot stat); the union is consistent instead, and does not pay
 *    a system call per empty file looked up (0.3 s per 100,000) for layers no tool writes;
 *  - the upper layer holds no xattr whiteouts (ours are character devices 0/0);
 *  - a directory's overlay.redirect is where its lower part lives (redirect.ts).
 * How: with the syscalls addon (syscalls.ts), llistxattr(2) (and lgetxattr(2) for a listed
 * mark) when a directory or a zero-size file is looked up or listed; a lower's answers are
 * remembered (lowers do not change while served), up to MEMO_MAX paths. Without the addon,
 * one getfattr walk of the layer at open (scanFacts), kept as sets that our own writes in the
 * upper keep true (markOpaque, moved, removed).
 * Paths are absolute binary strings (names.ts), read through the layer's Beneath.
 * Example: lower root and /etc with trusted.overlay.opaque="x", /etc/motd empty with
 * trusted.overlay.whiteout -> /etc/motd is a whiteout.
 */
import { spawn } from 'node:child_process';
import { FsError } from '../errors/fs-error.js';
import { child } from '../log.js';
import { sys, type Syscalls } from './syscalls.js';
import { pathBuf } from './names.js';
import { Beneath } from './beneath.js';
import { SharedWhileHeld } from './shared.js';

const log = child('vfs');
const MEMO_MAX = 65_536;
const NAMESPACES = ['trusted.overlay.', 'user.overlay.'] as const;

export interface DirMarks {
  readonly opaque: boolean;
  readonly redirect: string | undefined;
}

export interface XattrFacts {
  /** Is the directory opaque (overlay.opaque = "y")? */
  opaque(dir: string): boolean;
  /** May the directory hold xattr whiteouts (a lower directory marked "x")? */
  xwhiteouts(dir: string): boolean;
  /** Does the file carry overlay.whiteout (ask for zero-size files where xwhiteouts holds)? */
  xwhiteout(file: string): boolean;
  /**
   * A directory's marks, read at once: opaque as opaque() answers, and its overlay.redirect as
   * written (redirect.ts reads it; undefined: none).
   */
  dirMarks(dir: string): DirMarks;
  /** Our own writes in the upper: a directory was marked opaque or redirected, moved, or removed. */
  markOpaque(dir: string): void;
  markRedirect(dir: string, value: string): void;
  moved(from: string, to: string): void;
  removed(dir: string): void;
}

/** How marks are read: 'lgetxattr' (the addon) or 'getfattr' (a walk at open). */
export const XATTR_MODE: 'lgetxattr' | 'getfattr' = sys === undefined ? 'getfattr' : 'lgetxattr';

/** The marks of the layer at `root`; `lower`: it may hold xattr whiteouts. */
export function xattrFacts(root: string, lower: boolean): Promise<XattrFacts> {
  return sys === undefined ? scanFacts(root, lower) : Promise.resolve(new LiveFacts(sys, root, lower));
}

/** A lower layer's marks, read once for all the unions that hold it (shared.ts). */
export const lowerFacts = new SharedWhileHeld<Promise<XattrFacts>>((root) => xattrFacts(root, true));

/** A layer that is not there (no upper): no marks. */
export const NO_FACTS: XattrFacts = {
  opaque: () => false, xwhiteouts: () => false, xwhiteout: () => false, dirMarks: () => ({ opaque: false, redirect: undefined }),
  markOpaque: () => undefined, markRedirect: () => undefined, moved: () => undefined, removed: () => undefined,
};

class LiveFacts implements XattrFacts {
  /** Lowers only: answers by question and path, and directories' marks by path. */
  private readonly memo: Map<string, boolean> | undefined;
  private readonly dirs: Map<string, DirMarks> | undefined;

  constructor(private readonly x: Pick<Syscalls, 'lget' | 'llist'>, private readonly root: string, private readonly lower: boolean) {
    this.memo = lower ? new Map() : undefined;
    this.dirs = lower ? new Map() : undefined;
  }

  opaque(dir: string): boolean {
    return this.dirMarks(dir).opaque;
  }

  xwhiteouts(dir: string): boolean {
    return this.lower && this.remember('d', dir, () => {
      const m = this.marks(dir);
      return m.get('opaque') === 'x' || m.has('whiteouts');
    });
  }

  xwhiteout(file: string): boolean {
    return this.lower && this.remember('w', file, () => this.marks(file).has('whiteout'));
  }

  /** One llistxattr for both marks: the upper's read live, a lower's remembered. */
  dirMarks(dir: string): DirMarks {
    let d = this.dirs?.get(dir);
    if (d === undefined) {
      const m = this.marks(dir);
      d = { opaque: m.get('opaque') === 'y', redirect: m.get('redirect') };
      if (this.dirs !== undefined) {
        if (this.dirs.size >= MEMO_MAX) this.dirs.clear();
        this.dirs.set(dir, d);
      }
    }
    return d;
  }

  // lgetxattr answers these after our writes: nothing to keep
  markOpaque(): void { /* read live */ }
  markRedirect(): void { /* read live */ }
  moved(): void { /* read live */ }
  removed(): void { /* read live */ }

  private remember(q: string, path: string, ask: () => boolean): boolean {
    if (this.memo === undefined) return ask();
    const key = q + path;
    let v = this.memo.get(key);
    if (v === undefined) {
      if (this.memo.size >= MEMO_MAX) this.memo.clear();
      this.memo.set(key, v = ask());
    }
    return v;
  }

  /**
   * The overlay marks of path, by name without namespace (trusted.overlay.* before
   * user.overlay.*). One llistxattr answers for both namespaces, and most files have no
   * attribute at all; a value is read only for a listed mark. A path that is gone has none.
   */
  private marks(path: string): Map<string, string> {
    const found = new Map<string, string>();
    try {
      // resolved inside the layer, never through a symlink (beneath.ts)
      const p = Beneath.of(this.root).path(path.slice(this.root.length));
      const names = this.x.llist(p);
      if (names.length === 0) return found;
      for (const ns of NAMESPACES) {
        for (const name of names.toString('latin1').split('\0')) {
          if (!name.startsWith(ns) || found.has(name.slice(ns.length))) continue;
          const v = this.x.lget(p, name);
          if (v !== null) found.set(name.slice(ns.length), v.toString('latin1'));
        }
      }
      return found;
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'EIO';
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return found;
      throw new FsError(code, `xattrs of ${path}`);
    }
  }
}

/** The sets of one getfattr walk; the upper's kept true by our writes. */
class ScannedFacts implements XattrFacts {
  readonly opaqueDirs = new Set<string>();
  readonly xwDirs = new Set<string>();
  readonly xwFiles = new Set<string>();
  readonly redirects = new Map<string, string>();

  constructor(private readonly lower: boolean) {}

  opaque(dir: string): boolean { return this.opaqueDirs.has(dir); }
  xwhiteouts(dir: string): boolean { return this.lower && this.xwDirs.has(dir); }
  xwhiteout(file: string): boolean { return this.lower && this.xwFiles.has(file); }
  dirMarks(dir: string): DirMarks { return { opaque: this.opaqueDirs.has(dir), redirect: this.redirects.get(dir) }; }
  markOpaque(dir: string): void { this.opaqueDirs.add(dir); }
  markRedirect(dir: string, value: string): void { this.redirects.set(dir, value); }
  moved(from: string, to: string): void {
    if (this.opaqueDirs.delete(from)) this.opaqueDirs.add(to);
    const r = this.redirects.get(from);
    if (r !== undefined) {
      this.redirects.delete(from);
      this.redirects.set(to, r);
    }
  }
  removed(dir: string): void {
    this.opaqueDirs.delete(dir);
    this.redirects.delete(dir);
  }
}

/** One `getfattr -R -P` of the layer (no symlink followed), for hosts without the addon. */
export async function scanFacts(root: string, lower: boolean): Promise<XattrFacts> {
  const facts = new ScannedFacts(lower);
  const out = await new Promise<Buffer | null>((resolve) => {
    let p;
    try {
      p = spawn('getfattr', ['-R', '-P', '--absolute-names', '-d', '-e', 'text', '-m', '^(trusted|user)\\.overlay\\.', pathBuf(root).toString('utf8')],
        { stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      resolve(null);
      return;
    }
    const chunks: Buffer[] = [];
    p.stdout.on('data', (c: Buffer) => chunks.push(c));
    p.on('error', () => resolve(null));
    p.on('close', () => resolve(Buffer.concat(chunks)));
  });
  if (out === null) {
    log.warn('neither the syscalls addon nor getfattr is available: overlayfs opaque xattrs are not read', { root });
    return facts;
  }
  let file = '';
  for (const line of out.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) file = unescapeGetfattr(line.slice(8));
    else if (/^(trusted|user)\.overlay\.opaque="y"$/.test(line)) facts.opaqueDirs.add(file);
    else if (/^(trusted|user)\.overlay\.(opaque="x"|whiteouts=)/.test(line)) facts.xwDirs.add(file);
    else if (/^(trusted|user)\.overlay\.whiteout=/.test(line)) facts.xwFiles.add(file);
    else if (/^(trusted|user)\.overlay\.redirect="/.test(line)) facts.redirects.set(file, unescapeGetfattr(line.slice(line.indexOf('"') + 1, -1)));
  }
  return facts;
}

/** getfattr escapes unusual bytes in file names as \ooo octal. */
function unescapeGetfattr(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}
