/**
 * The canonical tree description shared by the C walker (driver/walk.c) and local walks (the
 * kernel overlayfs oracle, lower-layer fingerprints): one line per object,
 *   path \t type \t mode \t uid \t gid \t nlink \t size \t extra
 * with names escaped byte-wise exactly like driver/common.h esc_write (bytes outside 0x21..0x7e
 * and '\' become \xHH). The root is '.'.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';

export interface TreeEntry {
  path: string;
  type: string;
  mode: string;
  uid: string;
  gid: string;
  nlink: string;
  size: string;
  extra: string;
  /** Only in local walks with times=true. */
  mtime?: string;
}

export interface Tree {
  entries: Map<string, TreeEntry>;
  /** Lines the walker flagged (ERR ...), or unparsable lines. */
  errors: string[];
}

export function esc(b: Buffer): string {
  let s = '';
  for (const c of b) {
    if (c < 0x21 || c > 0x7e || c === 0x5c) s += `\\x${c.toString(16).padStart(2, '0')}`;
    else s += String.fromCharCode(c);
  }
  return s;
}

export function parseTree(text: string): Tree {
  const entries = new Map<string, TreeEntry>();
  const errors: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const f = line.split('\t');
    if (f[0] === 'ERR' || f.length < 8) {
      errors.push(line);
      continue;
    }
    const [path, type, mode, uid, gid, nlink, size, extra, mtime] = f as [string, string, string, string, string, string, string, string, string?];
    if (entries.has(path)) errors.push(`listed twice: ${path}`);
    entries.set(path, { path, type, mode, uid, gid, nlink, size, extra, ...(mtime !== undefined ? { mtime } : {}) });
  }
  return { entries, errors };
}

function typeChar(st: Stats): string {
  if (st.isFile()) return 'f';
  if (st.isDirectory()) return 'd';
  if (st.isSymbolicLink()) return 'l';
  if (st.isFIFO()) return 'p';
  if (st.isSocket()) return 's';
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  return '?';
}

function sha256File(p: Buffer): string {
  return createHash('sha256').update(readFileSync(p)).digest('hex');
}

/**
 * Walk a local directory (never following symlinks). `times` appends mtime (ns) and, for the
 * lower-layer fingerprint, the whole line is what must not change.
 */
export function walkLocal(root: string, opts: { times?: boolean } = {}): Tree {
  const entries = new Map<string, TreeEntry>();
  const visit = (abs: Buffer, rel: string): void => {
    const st = lstatSync(abs, { bigint: false });
    const type = typeChar(st);
    let extra = '-';
    if (type === 'f') extra = sha256File(abs);
    else if (type === 'l') extra = esc(readlinkSync(abs, { encoding: 'buffer' }));
    else if (type === 'c' || type === 'b') extra = `${Math.floor(st.rdev / 256) & 0xfff}:${(st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00)}`;
    const e: TreeEntry = {
      path: rel, type, mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), uid: String(st.uid), gid: String(st.gid),
      nlink: String(st.nlink), size: String(st.size), extra,
    };
    if (opts.times) e.mtime = String(lstatSync(abs, { bigint: true }).mtimeNs);
    entries.set(rel, e);
    if (type === 'd') {
      for (const name of readdirSync(abs, { encoding: 'buffer' })) {
        const childAbs = Buffer.concat([abs, Buffer.from('/'), name]);
        visit(childAbs, rel === '.' ? esc(name) : `${rel}/${esc(name)}`);
      }
    }
  };
  visit(Buffer.from(root), '.');
  return { entries, errors: [] };
}

export function formatTree(t: Tree): string {
  return [...t.entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((e) => [e.path, e.type, e.mode, e.uid, e.gid, e.nlink, e.size, e.extra, ...(e.mtime ? [e.mtime] : [])].join('\t'))
    .join('\n');
}

export type Field = 'type' | 'mode' | 'uid' | 'gid' | 'nlink' | 'size' | 'extra' | 'mtime';

/**
 * Differences between the oracle's tree and the server's, as readable lines (empty = equal).
 * Directory sizes and link counts are never compared: overlayfs reports a merged directory's
 * st_size from its upper/top-most copy and nlink=1 for merged directories, which no NFS server
 * has a reason to imitate. `ignore(path, field)` documents further known differences.
 */
export function diffTrees(oracle: Tree, server: Tree, fields: Field[], ignore?: (path: string, field: Field) => boolean): string[] {
  const out: string[] = [];
  for (const e of server.errors) out.push(`server walk error: ${e}`);
  for (const e of oracle.errors) out.push(`oracle walk error: ${e}`);
  for (const [p, o] of oracle.entries) {
    const s = server.entries.get(p);
    if (!s) {
      out.push(`missing on server: ${p} (${o.type})`);
      continue;
    }
    for (const f of fields) {
      if (o.type === 'd' && (f === 'size' || f === 'nlink' || f === 'mtime')) continue;
      if (f !== 'type' && o.type !== s.type) continue;
      if (ignore?.(p, f)) continue;
      if (o[f] !== s[f]) out.push(`${p}: ${f} oracle=${o[f]} server=${s[f]}`);
    }
  }
  for (const p of server.entries.keys()) if (!oracle.entries.has(p)) out.push(`extra on server: ${p} (${server.entries.get(p)?.type})`);
  return out;
}
