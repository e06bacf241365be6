/**
 * beneath: every path the union hands the kernel, resolved inside its layer.
 *
 * Rule: a layer's directories are opened from the fd of the layer's root with openat2(2)
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (O_PATH; the syscalls addon), and a call is given
 * `/proc/self/fd/<that fd>/<name>`: the kernel jumps to the very directory the fd holds (a
 * magic link is not walked again by name) and looks up one name in it, a name every caller
 * already treats as possibly a symlink (lstat, O_NOFOLLOW, unlink, rename). So no directory
 * on the way is ever a symlink followed, and nothing a local process does to a layer (a
 * subdirectory swapped for a symlink to /etc) moves a read or a write outside it: the call
 * fails with ELOOP or ENOENT instead. The path stays short however deep the directory: one
 * deeper than PATH_MAX is opened a piece at a time from an open ancestor.
 * One Beneath per layer root for the whole process, shared by the unions that hold it (a
 * per-client export's unions over one lower), closed when the last lets go.
 * The fds are kept (DIR_FDS for the process, the least recently used dropped first). The
 * union's own moves and removals of an upper directory forget it and everything below
 * (forget); the lowers do not change. An fd dropped is closed on the next event-loop turn, so
 * a path is good until its caller's next await: what crosses an await opens an fd of its own
 * first (copy-up's source, the metadata commit's fsyncs, a listing read on the pool: hold).
 * What a local process can still do: move a directory the union holds open to outside the
 * layer, on the same file system; the union then follows it there, as kernel overlayfs, which
 * also works from the dentries it holds, would.
 * Without the syscalls addon, or without /proc: the plain root + rel path, and a warning at
 * start.
 * Example: layer /srv/lower, rel '/etc/ssh/sshd_config' -> openat2(root fd, 'etc/ssh') = 23 ->
 * '/proc/self/fd/23/sshd_config'.
 */
import * as fs from 'node:fs';
import { child } from '../log.js';
import { pathBuf } from './names.js';
import { sys } from './syscalls.js';
import { AddonStat, lstatQuiet, statFields, type LStat } from './lstat.js';

const log = child('vfs');

/** Directory fds kept open for the whole process (all layers of all unions). */
const DIR_FDS = 1024;
/** Longest rel given to one openat2 (PATH_MAX 4096 with room to spare). */
const PIECE = 3072;

interface Entry { readonly owner: Map<string, Entry>; readonly rel: string; readonly fd: number; used: boolean }

/**
 * The process's open directories, oldest first (a Set keeps insertion order), evicted by the
 * clock rule: one used since it last came round gets another round, so a hit costs one flag.
 */
const open = new Set<Entry>();
let retired: number[] = [];

function retire(e: Entry): void {
  e.owner.delete(e.rel);
  open.delete(e);
  if (retired.length === 0) setImmediate(closeRetired);
  retired.push(e.fd);
}

function evictOne(): void {
  for (const e of open) {
    if (!e.used) {
      retire(e);
      return;
    }
    e.used = false;
    open.delete(e);
    open.add(e);
  }
}

function closeRetired(): void {
  const fds = retired;
  retired = [];
  for (const fd of fds) fs.close(fd, () => undefined);
}

let warned = false;

/** Paths by name (no containment): said once, loudly. */
function byName(why: string): void {
  if (!warned) log.warn(`${why}: layer paths are resolved by name, and a symlink a local process puts in a layer is followed`);
  warned = true;
}

let procFd: boolean | undefined;

/** Does /proc/self/fd/<fd> lead to the directory fd holds (a container may have no /proc)? */
function procFdWorks(fd: number): boolean {
  if (procFd === undefined) {
    try {
      procFd = fs.statSync(`/proc/self/fd/${fd}`).isDirectory();
    } catch {
      procFd = false;
    }
  }
  return procFd;
}

/** The Beneath of each root some union holds, with how many hold it. */
const held = new Map<string, { b: Beneath; users: number }>();

export class Beneath {
  private rootFd = -1;
  /** This layer's open directories, by rel. */
  private readonly dirs = new Map<string, Entry>();
  /** `/proc/self/fd/<root fd>` (binary string), or the root itself without the addon. */
  private readonly rootDir: string;

  /** The Beneath of root (the layer's real path as a binary string, names.ts); release it once. */
  static acquire(root: string): Beneath {
    let e = held.get(root);
    if (e === undefined) held.set(root, e = { b: new Beneath(root), users: 0 });
    e.users++;
    return e.b;
  }

  /** The Beneath of root while a union holds it (the xattr marks of a layer read through it). */
  static of(root: string): Beneath {
    const e = held.get(root);
    if (e === undefined) throw new Error(`no union holds the layer ${root}`);
    return e.b;
  }

  private constructor(private readonly root: string) {
    this.rootDir = root;
    if (sys === undefined) {
      byName('the syscalls addon is not built');
      return;
    }
    const fd = sys.openRoot(pathBuf(root));
    if (!procFdWorks(fd)) {
      fs.closeSync(fd);
      byName('/proc is not mounted (/proc/self/fd)');
      return;
    }
    this.rootFd = fd;
    this.rootDir = `/proc/self/fd/${fd}`;
  }

  /**
   * The path of rel ('' for the root, else '/a/b'): its directory's fd and its own name. The
   * root is `<fd>/.`: the magic link itself is a symlink to lstat, but not when a name follows.
   */
  path(rel: string): Buffer {
    if (rel === '') return pathBuf(this.rootFd < 0 ? this.rootDir : this.rootDir + '/.');
    const slash = rel.lastIndexOf('/');
    return pathBuf(this.dir(rel.slice(0, slash)) + rel.slice(slash));
  }

  /**
   * lstat of rel, by its name in its directory's fd (fstatat: one component for the kernel);
   * undefined when it or a directory above it is not there.
   */
  lstat(rel: string): LStat | undefined {
    if (this.rootFd < 0) return lstatQuiet(pathBuf(this.root + rel));
    const slash = rel.lastIndexOf('/');
    let fd = this.rootFd;
    if (slash > 0) {
      try {
        fd = this.fdOf(rel.slice(0, slash));
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
        throw e;
      }
    }
    return sys!.lstatAt(fd, rel.slice(slash + 1), statFields) ? new AddonStat() : undefined;
  }

  /**
   * The directory rel as a path whose children are `<it>/<name>`, each looked up in that very
   * directory (binary string). Throws the errno (ENOENT, ENOTDIR, ELOOP, EXDEV) when rel is not
   * a directory reached without a symlink.
   */
  dir(rel: string): string {
    if (rel === '' || this.rootFd < 0) return this.rootDir + rel;
    return `/proc/self/fd/${this.fdOf(rel)}`;
  }

  /**
   * The directory rel opened for the caller alone, for use across awaits (a listing read on
   * the thread pool): `inside` as from dir(), until release().
   */
  hold(rel: string): { readonly inside: string; release(): void } {
    if (this.rootFd < 0) return { inside: this.rootDir + rel, release: () => undefined };
    const fd = this.openDir(rel);
    let live = true;
    return {
      inside: `/proc/self/fd/${fd}`,
      release: () => {
        if (live) fs.closeSync(fd);
        live = false;
      },
    };
  }

  /** rel (a directory of this layer) was moved or removed: drop it and what is below it. */
  forget(rel: string): void {
    if (this.rootFd < 0) return;
    for (const [r, e] of this.dirs) {
      if (r === rel || (r.startsWith(rel) && r.charCodeAt(rel.length) === 0x2f)) retire(e);
    }
  }

  release(): void {
    const e = held.get(this.root);
    if (e === undefined || e.b !== this || --e.users > 0) return;
    held.delete(this.root);
    this.close();
  }

  private close(): void {
    if (this.rootFd < 0) return;
    for (const e of this.dirs.values()) retire(e);
    retired.push(this.rootFd);
    setImmediate(closeRetired);
    this.rootFd = -1;
  }

  private fdOf(rel: string): number {
    const hit = this.dirs.get(rel);
    if (hit !== undefined) {
      hit.used = true;
      return hit.fd;
    }
    const fd = this.openDir(rel);
    const e: Entry = { owner: this.dirs, rel, fd, used: false };
    this.dirs.set(rel, e);
    open.add(e);
    if (open.size > DIR_FDS) evictOne();
    return fd;
  }

  /** A new fd of rel: from the root in one step, or from the kept fd of a piece above it when deep. */
  private openDir(rel: string): number {
    if (rel === '') return sys!.openBeneath(this.rootFd, Buffer.alloc(0));
    let from = this.rootFd;
    let rest = rel;
    if (rel.length > PIECE) {
      const cut = rel.indexOf('/', rel.length - PIECE);
      if (cut > 0) {
        from = this.fdOf(rel.slice(0, cut));
        rest = rel.slice(cut);
      }
    }
    return sys!.openBeneath(from, pathBuf(rest.slice(1)));
  }
}
