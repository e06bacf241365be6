/**
 * The server's Prometheus metrics (prom-client), one registry per server. The RPC layer and the
 * NFS program report into it through their observer interfaces (src/rpc/observer.ts,
 * src/nfs3/observer.ts); what the unions hold and have done is read when it is scraped
 * (union.ts), and the process's own figures likewise (process.ts).
 *
 * Names follow Prometheus conventions: a `union_nfsd_` prefix, base units (seconds, bytes),
 * `_total` for counters. Labels are bounded: procedures and statuses are the RFCs' finite
 * sets, exports the configured ones, and client addresses at most CLIENT_LABELS_MAX (later
 * ones are counted as client="other"); never a file name or handle. README "Operating it"
 * lists them and what each maps to in nfs-ganesha's monitoring.
 * Hot-path cost: one histogram observation (prom-client, about 0.3 µs) and additions to plain
 * numbers (tally.ts) per call, and nothing without --metrics; bench/metrics-overhead.ts
 * measures what a client sees.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerProcessMetrics } from './process.js';
import { registerUnionMetrics, type ExportUsage } from './union.js';
import { plainAddress } from '../exports/client-rules.js';
import { Tally, type Cell } from './tally.js';
import { procedureName, type ProgramVersion, type RpcDrop, type RpcObserver, type RpcRejection } from '../rpc/index.js';
import { nfsstat3Name, type Nfs3Observer } from '../nfs3/observer.js';
import { NFS3_OK, NFSPROC3_NAMES } from '../nfs3/constants.js';

/** Distinct client addresses given a label of their own; the rest are client="other". */
export const CLIENT_LABELS_MAX = 1024;

/** From 25 µs (a GETATTR answered from memory) to 10 s (a copy-up of a large file). */
const LATENCY_BUCKETS = [0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/** What the metrics read from the server when scraped. */
export interface MetricSources {
  /** Per export: its open unions and what they hold. */
  exports(): readonly ExportUsage[];
  /** Entries held by the duplicate request cache. */
  drcEntries(): number;
  /** The lock manager's state (src/nlm). */
  locks(): { readonly held: number; readonly blocked: number; readonly grace: boolean };
}

interface CallCells {
  readonly requests: Cell;
  readonly duration: Histogram.Internal<string>;
}

interface ClientCells {
  readonly requests: Cell;
  readonly read: Cell;
  readonly written: Cell;
}

interface ExportCells {
  readonly requests: Cell[];
  readonly read: Cell;
  readonly written: Cell;
}

export class ServerMetrics implements RpcObserver, Nfs3Observer {
  readonly registry = new Registry();
  private inFlight = 0;
  private connections = 0;
  private readonly requests: Tally<string>;
  private readonly duration: Histogram;
  private readonly rejections: Counter;
  private readonly retransmits: Counter;
  private readonly accepted: Cell;
  private readonly drops: Counter;
  private readonly errors: Tally<number>;
  private readonly exportRequests: Tally<string>;
  private readonly exportRead: Tally<string>;
  private readonly exportWritten: Tally<string>;
  private readonly clientRequests: Tally<string>;
  private readonly clientRead: Tally<string>;
  private readonly clientWritten: Tally<string>;
  /** Cells looked up once: per program version and procedure, per client, per export. */
  private readonly calls = new Map<ProgramVersion, CallCells[]>();
  private readonly clients = new Map<string, ClientCells>();
  private other: ClientCells | undefined;
  private readonly exports = new Map<string, ExportCells>();

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    const metrics = this;
    registerProcessMetrics(this.registry);
    const byProc = (key: string): Record<string, string> => {
      const [program, procedure] = key.split(' ') as [string, string];
      return { program, procedure };
    };
    this.requests = new Tally({ name: 'union_nfsd_requests_total', help: 'RPC calls answered, by program and procedure.', labelNames: ['program', 'procedure'], registers }, byProc);
    this.duration = new Histogram({
      name: 'union_nfsd_request_duration_seconds', help: 'Time from a call decoded to its reply encoded, by program and procedure.',
      labelNames: ['program', 'procedure'], buckets: LATENCY_BUCKETS, registers,
    });
    new Gauge({ name: 'union_nfsd_requests_in_flight', help: 'Calls being answered now.', registers, collect() { this.set(metrics.inFlight); } });
    this.rejections = new Counter({ name: 'union_nfsd_rpc_rejections_total', help: 'Calls answered with an RPC-level error instead of a result, by reason.', labelNames: ['reason'], registers });
    this.retransmits = new Counter({
      name: 'union_nfsd_drc_retransmits_total', help: 'Retransmitted non-idempotent calls: replayed from the duplicate request cache, or dropped while the original ran.',
      labelNames: ['outcome'], registers,
    });
    new Gauge({ name: 'union_nfsd_drc_entries', help: 'Replies held by the duplicate request cache.', registers, collect() { this.set(sources.drcEntries()); } });
    new Gauge({
      name: 'union_nfsd_locks', help: 'NLM locks and share reservations held, and lock requests blocked.', labelNames: ['state'], registers,
      collect() {
        const l = sources.locks();
        this.set({ state: 'held' }, l.held);
        this.set({ state: 'blocked' }, l.blocked);
      },
    });
    new Gauge({ name: 'union_nfsd_lock_grace', help: '1 while the grace period after a restart admits only lock reclaims.', registers, collect() { this.set(sources.locks().grace ? 1 : 0); } });
    new Gauge({ name: 'union_nfsd_connections', help: 'TCP connections open.', registers, collect() { this.set(metrics.connections); } });
    this.accepted = new Tally({ name: 'union_nfsd_connections_accepted_total', help: 'TCP connections accepted.', registers }, () => ({})).cell('');
    this.drops = new Counter({
      name: 'union_nfsd_limit_drops_total', help: 'Connections refused or closed, calls dropped or reading paused because a limit was hit, by limit.',
      labelNames: ['limit'], registers,
    });
    this.errors = new Tally({ name: 'union_nfsd_nfs_errors_total', help: 'NFS calls answered with an error status, by procedure and nfsstat3.', labelNames: ['procedure', 'status'], registers },
      (k) => ({ procedure: NFSPROC3_NAMES[Math.floor(k / STATUS_SPAN)] ?? 'unknown', status: nfsstat3Name(k % STATUS_SPAN) }));
    const byExportProc = (key: string): Record<string, string> => {
      const at = key.lastIndexOf(' ');
      return { export: key.slice(0, at), procedure: key.slice(at + 1) };
    };
    this.exportRequests = new Tally({ name: 'union_nfsd_export_requests_total', help: 'NFS calls, by export and procedure.', labelNames: ['export', 'procedure'], registers }, byExportProc);
    this.exportRead = new Tally({ name: 'union_nfsd_export_read_bytes_total', help: 'File data sent by READ, by export.', labelNames: ['export'], registers }, (e) => ({ export: e }));
    this.exportWritten = new Tally({ name: 'union_nfsd_export_written_bytes_total', help: 'File data received by WRITE, by export.', labelNames: ['export'], registers }, (e) => ({ export: e }));
    this.clientRequests = new Tally({ name: 'union_nfsd_client_requests_total', help: 'NFS calls, by client address.', labelNames: ['client'], registers }, (c) => ({ client: c }));
    this.clientRead = new Tally({ name: 'union_nfsd_client_read_bytes_total', help: 'File data sent by READ, by client address.', labelNames: ['client'], registers }, (c) => ({ client: c }));
    this.clientWritten = new Tally({ name: 'union_nfsd_client_written_bytes_total', help: 'File data received by WRITE, by client address.', labelNames: ['client'], registers }, (c) => ({ client: c }));

    registerUnionMetrics(this.registry, sources.exports);
  }

  // ---- RpcObserver ------------------------------------------------------------------------

  callStarted(): void {
    this.inFlight++;
  }

  callFinished(pv: ProgramVersion, proc: number, seconds: number): void {
    this.inFlight--;
    let byProc = this.calls.get(pv);
    if (byProc === undefined) this.calls.set(pv, byProc = []);
    let c = byProc[proc];
    if (c === undefined) {
      const program = `${pv.name}${pv.vers}`, procedure = procedureName(pv, proc);
      byProc[proc] = c = { requests: this.requests.cell(`${program} ${procedure}`), duration: this.duration.labels(program, procedure) };
    }
    c.requests.n++;
    c.duration.observe(seconds);
  }

  rejected(reason: RpcRejection): void {
    this.rejections.inc({ reason });
  }

  retransmit(outcome: 'replayed' | 'dropped'): void {
    this.retransmits.inc({ outcome });
  }

  connectionOpened(): void {
    this.connections++;
    this.accepted.n++;
  }

  connectionClosed(): void {
    this.connections--;
  }

  dropped(reason: RpcDrop): void {
    this.drops.inc({ limit: reason });
  }

  // ---- Nfs3Observer -----------------------------------------------------------------------

  answered(exportPath: string | undefined, client: string, proc: number, status: number, read: number, written: number): void {
    if (status !== NFS3_OK) this.errors.add(proc * STATUS_SPAN + status);
    const c = this.client(client);
    c.requests.n++;
    c.read.n += read;
    c.written.n += written;
    if (exportPath === undefined) return;
    let e = this.exports.get(exportPath);
    if (e === undefined) this.exports.set(exportPath, e = { requests: [], read: this.exportRead.cell(exportPath), written: this.exportWritten.cell(exportPath) });
    (e.requests[proc] ??= this.exportRequests.cell(`${exportPath} ${NFSPROC3_NAMES[proc] ?? String(proc)}`)).n++;
    e.read.n += read;
    e.written.n += written;
  }

  private client(address: string): ClientCells {
    const c = this.clients.get(address);
    if (c !== undefined) return c;
    const cells = (label: string): ClientCells => ({
      requests: this.clientRequests.cell(label), read: this.clientRead.cell(label), written: this.clientWritten.cell(label),
    });
    if (this.clients.size >= CLIENT_LABELS_MAX) return this.other ??= cells('other');
    const made = cells(plainAddress(address));
    this.clients.set(address, made);
    return made;
  }
}

/** errors' key: procedure * STATUS_SPAN + nfsstat3 (the largest nfsstat3 is 10008). */
const STATUS_SPAN = 100_000;
