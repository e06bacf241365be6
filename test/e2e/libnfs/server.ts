/**
 * Runs the real server (`node dist/src/cli.js ...`) as a child process, waits for its
 * `union-nfsd ready nfs=<port> mount=<port> portmap=<111|rpcbind|off>` line, and stops it with
 * SIGTERM (SIGKILL after a grace period) or SIGKILL on purpose (crash tests). restart() starts
 * it again with the same arguments, so the same layers and state directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { serverCli } from './env.js';

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
    const wrap = this.args.wrap ?? [];
    const child = spawn(wrap[0] ?? process.execPath, [...wrap.slice(1), ...(wrap.length > 0 ? [process.execPath] : []), ...this.argv()], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.args.env },
    });
    this.child = child;
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
    this.child?.kill(sig);
  }

  /** Wait until the server has printed a line matching `re` (after `from` lines of output). */
  async waitFor(re: RegExp, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.log.some((l) => re.test(l))) {
      if (Date.now() > deadline) throw new Error(`server never printed ${re}:\n${this.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The server's process id while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM', graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child) return;
    if (child.exitCode !== null || child.signalCode !== null) {
      this.child = undefined;
      return;
    }
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    this.child = undefined;
  }

  async restart(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<Ready> {
    await this.stop(signal);
    return this.start();
  }
}
