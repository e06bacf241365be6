import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Port 111 is one per machine: test files that need the server's own portmapper hold this lock
 * (a directory under tmpdir, created atomically) so they do not run at once. A lock older than
 * 15 minutes is taken as left over from a killed run.
 */
export async function withPort111Lock<T>(fn: () => Promise<T>, waitMs = 8 * 60_000): Promise<T> {
  const lock = join(tmpdir(), 'union-nfsd-port111.lock');
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > 15 * 60_000) rmdirSync(lock);
      } catch { /* raced with the owner */ }
      if (Date.now() > deadline) throw new Error(`port 111 lock ${lock} still held after ${waitMs} ms`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    rmdirSync(lock);
  }
}
