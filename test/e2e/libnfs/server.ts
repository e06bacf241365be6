/**
 * Runs the real server (`node dist/src/cli.js ...`) as a child process, waits for its
 * `union-nfsd ready nfs=<port> mount=<port> portmap=<111|rpcbind|off>` line, and stops it with
 * SIGTERM (SIGKILL after a grace period) or SIGKILL on purpose (crash tests). restart() starts
 * it again with the same arguments, so the same layers and state directory.
 * Every server runs under `strace -f -e trace=execve` (seccomp-bpf: only execve stops it), and
 * stop() throws when it started any process (issue 11: no child process on any path of the
 * server), so the whole suite's servers are checked. Outside CI without strace: not traced, said
 * once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { has, inCi, serverCli } from './env.js';

export { withPort111Lock } from '../../helpers/port111.js';

export interface ServerArgs {
  /** Serve a configuration file's exports instead of the --lower ... shorthand. */
  config?: string;
  /** Listen address; default 127.0.0.1. */
  host?: string;
  lowers: string[];
  upper?: string;
  workdir?: string;
  state?: string;
  exportPath?: string;
  /** 0 = ephemeral (the default here, so tests never collide on 2049). */
  port?: number;
  mountPort?: number;
  /** Default false: most tests give explicit ports and must not fight over 111. */
  portmap?: boolean;
  whiteout?: 'oci' | 'overlayfs';
  /**
   * --clients. Default: the server's own default (loopback, privileged ports), which libnfs
   * running as root satisfies. Clients from unprivileged ports (the guest behind socat, the
   * TypeScript test client) need INSECURE_LOOPBACK.
   */
  clients?: string;
  env?: NodeJS.ProcessEnv;
  /** More options, appended as given (--metrics 0, --log-format json, ...). */
  extraArgs?: string[];
  /** A command the server runs under (e.g. setpriv with a capability bounding set). */
  wrap?: string[];
  /** false: not under strace, for a test that attaches its own (one tracer per process). */
  traceExec?: boolean;
}

const straceAtHand = has('strace');
if (!straceAtHand) {
  if (inCi) throw new Error('strace is missing: CI checks that no server starts a process');
  console.warn('\n*** strace is missing: the test servers are not checked for child processes ***\n');
}
let traces = 0;

/**
 * The processes a traced server started: every execve but those of its first process (the
 * wrapper's and node's own), as "pid path" lines.
 */
function startedProcesses(trace: string): string[] {
  const execs = trace.split('\n').map((l) => /^(\d+)\s+execve\("([^"]*)"/.exec(l)).filter((m) => m !== null);
  const first = execs[0]?.[1];
  return execs.filter((m) => m[1] !== first).map((m) => `${m[1]} ${m[2]}`);
}

/** The rule for loopback clients that connect from unprivileged ports (socat, RpcClient). */
export const INSECURE_LOOPBACK = '127.0.0.1(rw,no_root_squash,insecure)';

export interface Ready {
  nfsPort: number;
  mountPort: number;
  portmap: string;
  /** The metrics endpoint's port, when the server was given --metrics. */
  metricsPort?: number;
}

export class TestServer {
  private child: ChildProcess | undefined;
  /** The server's own process (the child is strace when traced). */
  private serverPid: number | undefined;
  private trace: string | undefined;
  private log: string[] = [];
  ready: Ready | undefined;

  constructor(readonly args: ServerArgs) {}

  argv(): string[] {
    const a = this.args;
    const v = [serverCli, ...(a.config ? ['--config', a.config] : ['--lower', a.lowers.join(':')]),
      '--host', a.host ?? '127.0.0.1', '--port', String(a.port ?? 0)];
    if (a.upper) v.push('--upper', a.upper, '--workdir', a.workdir ?? '');
    if (a.state) v.push('--state', a.state);
    if (a.exportPath) v.push('--export', a.exportPath);
    if (a.mountPort !== undefined) v.push('--mount-port', String(a.mountPort));
    if (!a.portmap) v.push('--no-portmap');
    if (a.whiteout) v.push('--whiteout', a.whiteout);
    if (a.clients) v.push('--clients', a.clients);
    if (a.extraArgs) v.push(...a.extraArgs);
    return v;
  }

  /** Every line the server printed (of the last 2,000). */
  lines(): readonly string[] {
    return this.log;
  }

  /** The last lines the server printed (for failure messages). */
  output(): string {
    return this.log.slice(-60).join('\n');
  }

  async start(timeoutMs = 30_000): Promise<Ready> {
    if (this.child) throw new Error('server already running');
    this.checkTrace(); // of a run that ended by itself
    const command = [...(this.args.wrap ?? []), process.execPath, ...this.argv()];
    this.trace = straceAtHand && this.args.traceExec !== false ? join(tmpdir(), `union-nfsd-execve-${process.pid}-${traces++}.log`) : undefined;
    if (this.trace !== undefined) command.unshift('strace', '--seccomp-bpf', '-f', '-qq', '-e', 'trace=execve', '-o', this.trace, '--');
    const child = spawn(command[0]!, command.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.args.env },
    });
    this.child = child;
    this.serverPid = undefined;
    const push = (b: Buffer) => {
      for (const l of b.toString('utf8').split('\n')) if (l) this.log.push(l);
      if (this.log.length > 2000) this.log.splice(0, this.log.length - 1000);
    };
    child.stderr?.on('data', push);
    this.ready = await new Promise<Ready>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`server not ready after ${timeoutMs} ms: ${this.argv().join(' ')}\n${this.output()}`));
      }, timeoutMs);
      child.stdout?.on('data', (b: Buffer) => {
        push(b);
        buf += b.toString('utf8');
        const m = /union-nfsd ready nfs=(\d+) mount=(\d+) portmap=(\S+)(?: metrics=(\d+))?\n/.exec(buf);
        if (m) {
          clearTimeout(timer);
          buf = '';
          resolve({ nfsPort: Number(m[1]), mountPort: Number(m[2]), portmap: m[3] ?? '', ...(m[4] !== undefined && { metricsPort: Number(m[4]) }) });
        }
      });
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        this.child = undefined;
        reject(new Error(`server exited (${code ?? sig}) before ready: ${this.argv().join(' ')}\n${this.output()}`));
      });
    });
    child.removeAllListeners('exit');
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    return this.ready;
  }

  /** nfs:// URL for libnfs with explicit ports (no portmapper needed). */
  url(path = ''): string {
    if (!this.ready) throw new Error('server not started');
    const exp = this.args.exportPath ?? '/union';
    return `nfs://127.0.0.1${exp}${path}?nfsport=${this.ready.nfsPort}&mountport=${this.ready.mountPort}`;
  }

  /** Send the server a signal (SIGHUP: reread its configuration). */
  signal(sig: NodeJS.Signals): void {
    const pid = this.pid;
    if (pid !== undefined) process.kill(pid, sig);
  }

  /** Wait until the server has printed a line matching `re` (after `from` lines of output). */
  async waitFor(re: RegExp, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.log.some((l) => re.test(l))) {
      if (Date.now() > deadline) throw new Error(`server never printed ${re}:\n${this.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The server's process id while it runs (under strace: strace's child). */
  get pid(): number | undefined {
    const child = this.child;
    if (child?.pid === undefined || this.trace === undefined) return child?.pid;
    if (this.serverPid === undefined) {
      try {
        const first = fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(' ')[0];
        if (first) this.serverPid = Number(first);
      } catch { /* exited */ }
    }
    return this.serverPid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM', graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      this.child = undefined;
      this.checkTrace();
      return;
    }
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const kill = (sig: NodeJS.Signals): void => {
      try {
        process.kill(this.pid ?? child.pid!, sig);
      } catch { /* gone */ }
    };
    kill(signal);
    const timer = setTimeout(() => kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    this.child = undefined;
    this.checkTrace();
  }

  /** Throws when the server that just stopped started a process. */
  private checkTrace(): void {
    const file = this.trace;
    this.trace = undefined;
    if (file === undefined) return;
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
      fs.rmSync(file, { force: true });
    } catch { /* strace never wrote it */ }
    const started = startedProcesses(text);
    if (started.length > 0) throw new Error(`the server started processes (strace -f -e trace=execve): ${started.join(', ')}\n${this.output()}`);
  }

  async restart(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<Ready> {
    await this.stop(signal);
    return this.start();
  }
}
