/**
 * The server's own status monitor state (NSM, XNFS chapter 11), so that locking works with no
 * system rpc.statd: a durable list of the clients that held locks, and our NSM state number.
 *
 * Rule: a client is written to the list (file and directory fsynced) before its first lock is
 * granted; at start the state number goes up by 2 (it stays odd: "up") and every client of
 * the previous run is sent SM_NOTIFY (our name, the new state) at its status monitor, found
 * through its portmapper and sent from the address the client used, with retries for up to
 * 15 minutes as sm-notify(8) does. The client's statd then tells its lockd to reclaim its
 * locks, which the grace period waits for. A client's entry is removed once notified, unless
 * it has locked again in this run.
 * Layout of <dir>/ (mode 0700):
 *   state       our NSM state, decimal text
 *   sm/<addr>   one file per client address: {"caller": caller_name, "local": our address}
 * Example: client 10.0.0.7 locks -> sm/10.0.0.7; server killed and restarted -> state 3 -> 5,
 * SM_NOTIFY("server-host", 5) to 10.0.0.7's statd, sm/10.0.0.7 removed once answered.
 * Races: monitor() is synchronous (on the event loop), notifications are async and each
 * touches only its own entry.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hostname } from 'node:os';
import { child } from '../log.js';
import { callUdp } from '../rpc/client.js';
import { getPort } from '../portmap/client.js';
import { fsyncDir, writeFileDurable } from '../durable.js';
import { SM_MAXSTRLEN, SM_PROG, SM_VERS, SMPROC } from './program.js';

const log = child('nsm');
/** Clients notified in parallel after a restart. */
const NOTIFY_AT_ONCE = 32;

export interface MonitoredClient {
  readonly address: string;
  readonly caller: string;
  /** Our address the client sent its locks to. */
  readonly local: string | undefined;
}

export interface NotifyOptions {
  /** mon_name in our SM_NOTIFY; default the host name. */
  readonly name?: string;
  /** Give up on a client after this long; default 15 minutes (sm-notify's default). */
  readonly giveUpMs?: number;
  /** First retry delay, doubled each time up to a minute; default 1 s. */
  readonly retryMs?: number;
  /** The clients' portmapper port; default 111 (tests move it). */
  readonly pmapPort?: number;
}

export class StatusMonitor {
  /** Our NSM state number: odd while we are up. */
  state = 1;
  private readonly sm: string;
  /** Clients written to the list in this run. */
  private readonly monitored = new Set<string>();
  private closed = false;
  /** Why the state directory could not be opened, if it could not. */
  private unusable: Error | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Notification attempts that may start now, and those waiting for one to end. */
  private free = NOTIFY_AT_ONCE;
  private readonly queued: (() => void)[] = [];

  constructor(readonly dir: string) {
    this.sm = path.join(dir, 'sm');
  }

  /**
   * Moves the state on and returns the clients that held locks in the previous run. A state
   * directory that cannot be written does not stop the server: NFS serves on, and every lock
   * request fails (monitor throws), since a lock that could not be recorded would not be
   * reclaimed after a restart.
   */
  open(): MonitoredClient[] {
    try {
      return this.load();
    } catch (err) {
      this.unusable = err as Error;
      log.warn(`status monitor: ${this.dir} cannot be used (${(err as Error).message}): lock requests will fail (NLM4_FAILED); give --nsm-dir a writable directory`);
      return [];
    }
  }

  private load(): MonitoredClient[] {
    fs.mkdirSync(this.sm, { recursive: true, mode: 0o700 });
    const statePath = path.join(this.dir, 'state');
    let previous = 0;
    try { previous = Number.parseInt(fs.readFileSync(statePath, 'utf8'), 10) || 0; } catch { /* first start */ }
    this.state = (previous | 1) + 2;
    if (this.state > 0x7fff_ffff) this.state = 1;
    writeFileDurable(statePath, Buffer.from(`${this.state}\n`), 0o600);
    const clients: MonitoredClient[] = [];
    for (const f of fs.readdirSync(this.sm)) {
      try {
        const e = JSON.parse(fs.readFileSync(path.join(this.sm, f), 'utf8')) as { caller?: unknown; local?: unknown };
        clients.push({ address: decodeURIComponent(f), caller: typeof e.caller === 'string' ? e.caller : '', local: typeof e.local === 'string' ? e.local : undefined });
      } catch (err) {
        log.warn(`status monitor: unreadable entry ${f} skipped: ${(err as Error).message}`);
      }
    }
    return clients;
  }

  /** Records `address` durably, once per run; throws when the state directory is unusable. */
  monitor(address: string, caller: string, local: string | undefined): void {
    if (this.unusable !== undefined) throw this.unusable;
    if (this.monitored.has(address)) return;
    writeFileDurable(this.entry(address), Buffer.from(JSON.stringify({ caller, ...(local !== undefined && { local }) })), 0o600);
    this.monitored.add(address);
  }

  /** Sends SM_NOTIFY to each client, retrying in the background; resolves when all are done. */
  notifyAll(clients: readonly MonitoredClient[], o: NotifyOptions = {}): Promise<void> {
    const name = (o.name ?? hostname()).slice(0, SM_MAXSTRLEN);
    return Promise.all(clients.map((c) => this.notify(c, name, o))).then(() => undefined);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private async notify(c: MonitoredClient, name: string, o: NotifyOptions): Promise<void> {
    const deadline = Date.now() + (o.giveUpMs ?? 15 * 60_000);
    let delay = o.retryMs ?? 1000;
    for (;;) {
      if (this.closed) return;
      // An attempt holds a socket (a reserved port when it can get one): at most NOTIFY_AT_ONCE.
      await this.slot();
      let error: Error | undefined;
      try {
        const local = c.local !== undefined ? { localAddress: c.local } : {};
        const port = await getPort(c.address, SM_PROG, SM_VERS, { ...local, ...(o.pmapPort !== undefined && { port: o.pmapPort }) });
        if (port === 0) throw new Error('no status monitor registered with its portmapper');
        await callUdp({
          host: c.address, port, prog: SM_PROG, vers: SM_VERS, proc: SMPROC.NOTIFY, ...local,
          args: (w) => w.string(Buffer.from(name, 'latin1')).int32(this.state),
        });
      } catch (err) {
        error = err as Error;
      } finally {
        this.unslot();
      }
      if (error === undefined) {
        log.info(`told ${c.address} (${c.caller}) that we restarted (SM_NOTIFY, state ${this.state})`, { client: c.address });
        break;
      }
      if (Date.now() + delay > deadline) {
        log.warn(`could not tell ${c.address} that we restarted: ${error.message}; giving up`, { client: c.address });
        break;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { this.timers.delete(t); resolve(); }, delay);
        this.timers.add(t);
      });
      delay = Math.min(delay * 2, 60_000);
    }
    if (!this.monitored.has(c.address) && !this.closed) {
      try { fs.unlinkSync(this.entry(c.address)); fsyncDir(this.sm); } catch { /* already gone */ }
    }
  }

  private slot(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queued.push(resolve));
  }

  private unslot(): void {
    const next = this.queued.shift();
    if (next !== undefined) next();
    else this.free++;
  }

  private entry(address: string): string {
    return path.join(this.sm, encodeURIComponent(address));
  }
}
