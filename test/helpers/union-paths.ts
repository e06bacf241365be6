/**
 * A union's objects by path, for tests that drive a UnionFs directly: walk (LOOKUP per
 * component), ls (READDIR in pages of 4, '.' and '..' left out, sorted) and cat (READ).
 */
import type { Cred, UnionFs } from '../../src/vfs/types.js';
import { rootCred } from './layers.js';

export function walk(u: UnionFs, p: string, cred: Cred = rootCred): number {
  let id = u.root;
  for (const c of p.split('/').filter(Boolean)) id = u.lookup(id, Buffer.from(c, 'latin1'), cred);
  return id;
}

export function ls(u: UnionFs, p: string): string[] {
  const out: string[] = [];
  let cookie = 0n;
  for (let i = 0; i < 100_000; i++) {
    const pg = u.readdir(walk(u, p), cookie, 4, false, rootCred);
    for (const e of pg.entries) { out.push(e.name.toString('latin1')); cookie = e.cookie; }
    if (pg.eof) break;
  }
  return out.filter((n) => n !== '.' && n !== '..').sort();
}

export async function cat(u: UnionFs, p: string): Promise<string> {
  return (await u.read(walk(u, p), 0, 1 << 20, rootCred)).data.toString();
}
