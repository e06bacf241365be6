/**
 * Compiles the C drivers (test/e2e/libnfs/driver/*.c) with gcc into a cache directory keyed by a
 * hash of the sources and flags, and runs them. Compilation writes a temporary and renames it,
 * so test files compiling the same driver at once do not see half-written binaries.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { driverSrcDir } from './env.js';

const execFileP = promisify(execFile);
const cacheDir = join(tmpdir(), 'union-nfsd-libnfs-drivers');

/** Compile driver `name` (driver/<name>.c); `posix` builds it without libnfs (-DUNFS_POSIX_ONLY). */
export async function compileDriver(name: string, opts: { posix?: boolean } = {}): Promise<string> {
  const src = join(driverSrcDir, `${name}.c`);
  const flags = ['-O1', '-Wall', '-Wextra', '-Wno-unused-parameter', ...(opts.posix ? ['-DUNFS_POSIX_ONLY'] : [])];
  const libs = opts.posix ? [] : ['-lnfs'];
  const h = createHash('sha256');
  h.update(readFileSync(src));
  h.update(readFileSync(join(driverSrcDir, 'common.h')));
  h.update(flags.join(' ') + libs.join(' '));
  const out = join(cacheDir, `${name}${opts.posix ? '-posix' : ''}-${h.digest('hex').slice(0, 16)}`);
  if (existsSync(out)) return out;
  mkdirSync(cacheDir, { recursive: true });
  // Tests of one file run at once in one process: each build gets a temporary of its own.
  const tmp = `${out}.tmp${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await execFileP('gcc', [...flags, '-o', tmp, src, ...libs]);
  } catch (e) {
    const err = e as { stderr?: string };
    throw new Error(`gcc ${name}.c failed:\n${err.stderr ?? String(e)}`);
  }
  renameSync(tmp, out);
  return out;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a binary with a hard timeout; stdout/stderr are collected (bounded to 256 MiB). */
export function run(bin: string, args: string[], opts: { timeoutMs?: number; input?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    const onData = (arr: Buffer[]) => (b: Buffer) => {
      size += b.length;
      if (size < 256 * 1024 * 1024) arr.push(b);
    };
    child.stdout.on('data', onData(out));
    child.stderr.on('data', onData(err));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout: Buffer.concat(out).toString('latin1'), stderr: Buffer.concat(err).toString('latin1') });
    });
    child.stdin.on('error', () => { /* the child may exit without reading */ });
    child.stdin.end(opts.input ?? '');
  });
}

/** Run and require exit code 0; the error carries stderr for the test log. */
export async function runOk(bin: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(bin, args, opts);
  if (r.code !== 0) {
    throw new Error(`${bin} ${args.join(' ')} exited ${r.code ?? r.signal}\nstderr: ${r.stderr.slice(-4000)}\nstdout tail: ${r.stdout.slice(-2000)}`);
  }
  return r.stdout;
}
