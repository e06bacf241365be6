/**
 * The entries of a READDIR or READDIRPLUS reply, read from the union a slice at a time.
 *
 * Rule: the union builds entries on the event loop (a lookup and, for READDIRPLUS, attributes
 * per entry: about 10 us each from the kernel's caches), so a page of thousands would hold
 * every other client for tens of milliseconds. Entries are taken SLICE at a time, with a turn
 * of the event loop between slices for other clients' calls, each slice read ahead on the
 * thread pool first when the disk is cold (Union.prefetch, cold-disk.ts). A slice continues
 * from the cookie of the last entry before it, as a client's next call would, so a directory
 * changed between slices reads as it does between two calls.
 * Example: maxEntries 1,000 -> 8 slices of 128 (the last 104), 7 turns given away.
 */
import type { Cred, DirEntry, DirPage, NodeId, UnionFs } from '../vfs/types.js';

const SLICE = 128;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Up to maxEntries entries of dir after cookie; throws what the first slice throws. */
export async function readEntries(fs: UnionFs, dir: NodeId, cookie: bigint, maxEntries: number, plus: boolean, cred: Cred): Promise<DirPage> {
  await fs.prefetch(dir, cookie, Math.min(SLICE, maxEntries));
  const first = fs.readdir(dir, cookie, Math.min(SLICE, maxEntries), plus, cred);
  if (first.eof || first.entries.length >= maxEntries || first.entries.length === 0) return first;
  const entries: DirEntry[] = [...first.entries];
  let eof = false;
  while (!eof && entries.length < maxEntries) {
    await nextTurn();
    const after = entries[entries.length - 1]!.cookie;
    const want = Math.min(SLICE, maxEntries - entries.length);
    let next: DirPage;
    try {
      await fs.prefetch(dir, after, want);
      next = fs.readdir(dir, after, want, plus, cred);
    } catch {
      break; // what was read stands; the client's next call meets the error
    }
    entries.push(...next.entries);
    eof = next.eof;
    if (next.entries.length === 0) break;
  }
  return { entries, eof, verifier: first.verifier };
}
