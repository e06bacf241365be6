/**
 * Command-line options -> ServerOptions. The layer names follow overlayfs's mount options
 * (lowerdir/upperdir/workdir become --lower/--upper/--workdir), so a line from /etc/fstab
 * translates one for one, and --clients takes an exports(5) client list: that command line is
 * the shorthand for one export. Several exports come from a configuration file (--config,
 * config-file.ts), whose listening settings the command line can override. Validation happens
 * here and there, once, with messages a user can act on; what needs the file system (overlaps
 * of the directories, host names) is checked at start (src/exports/layout.ts, client-rules.ts).
 */
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { DEFAULT_BUSY_POLL_US } from './rpc/busy-poll.js';
import { ClientRuleError, DEFAULT_CLIENTS, parseClientRules, type ParsedRule } from './exports/client-rules.js';
import { FSID_MAX } from './vfs/identity.js';
import { ImageError } from './image/errors.js';
import { DEFAULT_LIMITS, type RpcLimits } from './rpc/limits.js';
import { parseImageRef } from './image/reference.js';

export type WhiteoutFormat = 'oci' | 'overlayfs';

/** One export: a path clients mount, the union behind it, and who may mount it. */
export interface ExportConfig {
  /** The path clients mount ('/union'), absolute, no trailing slash. */
  readonly path: string;
  /** Lower layers, top-most first (overlayfs order); an image's layers go below them. */
  readonly lowers: readonly string[];
  /** An OCI image whose layers are lowers (src/image): oci:DIR[:TAG] or docker://HOST/NAME[:TAG]. */
  readonly image?: string;
  readonly upper?: string;
  readonly workdir?: string;
  /** Where the identity store lives when there is no workdir. */
  readonly state?: string;
  /** The upper's format, and the lower directories' (vfs/layers.ts). */
  readonly whiteoutFormat: WhiteoutFormat;
  /** Each lower's format where it is not whiteoutFormat: an image's layers are OCI. */
  readonly lowerFormats?: readonly WhiteoutFormat[];
  /** The export's id in its file handles (src/vfs/identity.ts). */
  readonly fsid: number;
  readonly clients: readonly ParsedRule[];
  /**
   * For an export whose upper and workdir contain {client} (a union per client): names for
   * client addresses, name -> address, used for {client} instead of the address.
   */
  readonly names?: Readonly<Record<string, string>>;
  /** True when no rule was given and DEFAULT_CLIENTS applies (the server says so at start). */
  readonly defaultClients: boolean;
  /** Where it was defined, for messages: 'the command line' or 'FILE:LINE'. */
  readonly source: string;
}

export interface ServerOptions {
  readonly exports: readonly ExportConfig[];
  readonly host: string;
  /** NFS port; MOUNT answers here too. 0 = any free port. */
  readonly port: number;
  /** An extra port that serves MOUNT (and NFS), for clients configured with mountport=. */
  readonly mountPort?: number;
  /** Serve a portmapper on 111, or register with the system's rpcbind when it owns 111. */
  readonly portmap: boolean;
  /** Microseconds the event loop keeps polling after a reply (src/rpc/busy-poll.ts); 0 = off. */
  readonly busyPollUs: number;
  /** The control socket's path (src/control.ts); none by default. */
  readonly control?: string;
  /** Where the Prometheus endpoint listens (src/metrics); off by default. */
  readonly metrics?: Listen;
  /**
   * Seconds after a restart in which only reclaims of locks are granted (src/nlm), when
   * clients held locks before it; default DEFAULT_GRACE_SECONDS.
   */
  readonly graceSeconds?: number;
  /** The status monitor's state directory (src/nsm/monitor.ts); default under $XDG_STATE_HOME. */
  readonly nsmDir?: string;
  /** Where images' layers are unpacked (src/image/cache.ts); default under $XDG_STATE_HOME. */
  readonly imageCache?: string;
  /** Speak plain HTTP, not HTTPS, to the registries of docker:// images. */
  readonly plainHttp?: boolean;
  /** Limits on what clients make the server hold (src/rpc/limits.ts); DEFAULT_LIMITS otherwise. */
  readonly limits?: Partial<RpcLimits>;
}

/**
 * The limits as options (`--max-connections 100`, `max-connections: 100` in a file): the field,
 * the unit an option is given in (seconds, MiB) and its largest value.
 */
export const LIMIT_OPTIONS = [
  { name: 'max-connections', field: 'maxConnections', unit: 1, max: 1_000_000 },
  { name: 'max-connections-per-client', field: 'maxConnectionsPerClient', unit: 1, max: 1_000_000 },
  { name: 'idle-timeout', field: 'idleTimeoutMs', unit: 1000, max: 86_400 },
  { name: 'record-timeout', field: 'recordTimeoutMs', unit: 1000, max: 3600 },
  { name: 'buffer-budget', field: 'bufferBudget', unit: 1024 * 1024, max: 1 << 20 },
  { name: 'max-calls', field: 'maxCalls', unit: 1, max: 1_000_000 },
  { name: 'max-udp-calls', field: 'maxUdpCalls', unit: 1, max: 1_000_000 },
] as const;

/** One limit's value as given (an integer 1..max in the option's unit), in the field's unit. */
export function parseLimit(o: (typeof LIMIT_OPTIONS)[number], given: unknown, what: string): number {
  const n = typeof given === 'string' ? Number(given) : given;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > o.max) throw new UsageError(`${what} wants an integer 1-${o.max}, got '${String(given)}'`);
  return n * o.unit;
}

/** nfs-ganesha's Grace_Period default; knfsd's is the lease time, 90 s too. */
export const DEFAULT_GRACE_SECONDS = 90;
/** The longest grace period accepted. */
export const MAX_GRACE_SECONDS = 3600;

export interface Listen {
  readonly host: string;
  readonly port: number;
}

export type LogFormat = 'text' | 'json';

export const DEFAULTS = {
  exportPath: '/union',
  host: '0.0.0.0',
  port: 2049,
} as const;

export const USAGE = `usage: union-nfsd [--lower A:B:C] [--image REF] [--upper U --workdir W] [--clients RULES] [options]
       union-nfsd --config FILE [options]

With none of --lower, --image and --config, serves a small demo union that it creates itself.

  --lower DIRS       read-only lower layers, colon-separated, top-most first
  --image REF        an OCI image whose layers are lower layers (below any --lower):
                     oci:DIR[:TAG] (an image layout, as skopeo and umoci write it) or
                     docker://HOST[:PORT]/NAME[:TAG|@sha256:HEX] (a registry)
  --image-cache DIR  where image layers are unpacked, once for every export
                     (default $XDG_STATE_HOME/union-nfsd/images)
  --plain-http       speak HTTP, not HTTPS, to registries (a registry on a trusted network)
  --upper DIR        writable upper layer (omit for a read-only export)
  --workdir DIR      work directory on the same filesystem as --upper
  --state DIR        identity store for a read-only export (default: under $XDG_STATE_HOME)
  --export PATH      export path clients mount (default ${DEFAULTS.exportPath})
  --clients RULES    who may mount it, in exports(5) syntax, e.g.
                     '10.0.0.0/24(rw) 10.0.1.5(ro,all_squash)' (default: loopback only,
                     '${DEFAULT_CLIENTS}', from ports below 1024)
  --config FILE      serve the exports of a configuration file (YAML; see the README)
                     instead of --lower ... --clients; SIGHUP rereads it
  --control PATH     listen for commands (--reset-client) on this Unix socket (mode 0600)
  --metrics [HOST:]PORT
                     serve Prometheus metrics at http://HOST:PORT/metrics (default host
                     127.0.0.1; off unless given)
  --log-format F     text (default) or json: one JSON object per line
  --check-config FILE
                     check a configuration file as a start would (layers, overlaps, client
                     host names), print the exports it would serve, and exit
  --host ADDR        address to listen on (default ${DEFAULTS.host}; the demo: 127.0.0.1)
  --port N           NFS port, MOUNT answers here too (default ${DEFAULTS.port}, 0 = any)
  --mount-port N     an additional port for MOUNT
  --no-portmap       do not serve or register with a portmapper on port 111
  --whiteout FORMAT  how the upper layer records deletions, and how the lowers are read:
                     oci (default) or overlayfs (.wh.* is then an ordinary name)
  --grace-period S   after a restart, grant only reclaims of locks for S seconds (default
                     ${DEFAULT_GRACE_SECONDS}; only when clients held locks before it)
  --nsm-dir DIR      where the lock manager keeps its status monitor state: the clients to
                     notify after a restart (default $XDG_STATE_HOME/union-nfsd/nsm)
  --max-connections N            TCP connections at once (default ${DEFAULT_LIMITS.maxConnections})
  --max-connections-per-client N from one client address (default ${DEFAULT_LIMITS.maxConnectionsPerClient})
  --idle-timeout S               close a connection idle this long (default ${DEFAULT_LIMITS.idleTimeoutMs / 1000})
  --record-timeout S             close a connection whose call has not arrived whole in S
                                 seconds (default ${DEFAULT_LIMITS.recordTimeoutMs / 1000})
  --buffer-budget MIB            bytes held in unfinished calls and unsent replies, all
                                 clients together; past it, reading pauses (default ${DEFAULT_LIMITS.bufferBudget / 1048576})
  --max-calls N                  calls running at once (default ${DEFAULT_LIMITS.maxCalls})
  --max-udp-calls N              UDP calls running at once; more are dropped (default ${DEFAULT_LIMITS.maxUdpCalls})
  --busy-poll US     keep polling for calls US microseconds after each reply instead of
                     sleeping (default ${DEFAULT_BUSY_POLL_US}; 0 = off: no CPU spent while idle)
  -h, --help         this text

       union-nfsd --image-gc [--image-cache DIR]
  removes from the image cache every layer no running server uses, and unfinished pulls.

       union-nfsd --control PATH --export PATH --reset-client CLIENT
  tells the server listening on PATH to discard CLIENT's union of that export (an export
  with {client} in its upper; CLIENT is the client's address or name) and start it afresh
  from the lowers, while every other client goes on being served.

Environment: UNION_NFSD_LOG=error|warn|info|debug (default info).`;

/** Where the metrics endpoint listens unless a host is given: never the network by accident. */
export const METRICS_HOST = '127.0.0.1';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Parsed {
  readonly help: boolean;
  /** --reset-client: a command for the server listening on `control`, not a server to start. */
  readonly reset?: { readonly control: string; readonly export: string; readonly client: string };
  /** True when neither layers nor a configuration were given: serve the demo union. */
  readonly demo: boolean;
  /** --config FILE, whose exports and settings the caller loads (config-file.ts). */
  readonly config?: string;
  /** --check-config FILE: check it and print what it would serve, serve nothing. */
  readonly checkConfig?: string;
  /** --image-gc: clean the image cache and exit. */
  readonly imageGc?: true;
  readonly logFormat: LogFormat;
  readonly options: ServerOptions;
  /** The listening settings given on the command line, which override a configuration file's. */
  readonly given: ReadonlySet<keyof ServerOptions>;
}

/** The options of one export that only the command-line shorthand takes. */
const EXPORT_FLAGS = ['lower', 'image', 'upper', 'workdir', 'state', 'export', 'whiteout', 'clients'] as const;

function port(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`${flag} wants a port number 0-65535, got '${value}'`);
  return n;
}

export function parseCommandLine(argv: readonly string[]): Parsed {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        lower: { type: 'string' },
        upper: { type: 'string' },
        workdir: { type: 'string' },
        state: { type: 'string' },
        export: { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        'mount-port': { type: 'string' },
        'no-portmap': { type: 'boolean' },
        whiteout: { type: 'string' },
        clients: { type: 'string' },
        config: { type: 'string' },
        control: { type: 'string' },
        metrics: { type: 'string' },
        'log-format': { type: 'string' },
        'check-config': { type: 'string' },
        'reset-client': { type: 'string' },
        'busy-poll': { type: 'string' },
        'grace-period': { type: 'string' },
        'nsm-dir': { type: 'string' },
        image: { type: 'string' },
        'image-cache': { type: 'string' },
        'plain-http': { type: 'boolean' },
        'image-gc': { type: 'boolean' },
        ...Object.fromEntries(LIMIT_OPTIONS.map((l) => [l.name, { type: 'string' as const }])),
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const logFormat = values['log-format'] ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') throw new UsageError(`--log-format is text or json, got '${logFormat}'`);
  if (values['check-config'] !== undefined) {
    const extra = Object.keys(values).find((k) => !['check-config', 'log-format'].includes(k));
    if (extra !== undefined) throw new UsageError(`--check-config checks a file and exits; --${extra} does not go with it`);
    return {
      help: false, demo: false, given: new Set(), logFormat, checkConfig: values['check-config'],
      options: { exports: [], host: DEFAULTS.host, port: DEFAULTS.port, portmap: false, busyPollUs: DEFAULT_BUSY_POLL_US },
    };
  }
  if (values['image-gc'] === true) {
    const extra = Object.keys(values).find((k) => !['image-gc', 'image-cache', 'log-format'].includes(k));
    if (extra !== undefined) throw new UsageError(`--image-gc cleans the image cache and exits; --${extra} does not go with it`);
    return {
      help: false, demo: false, given: new Set(), logFormat, imageGc: true,
      options: { exports: [], host: DEFAULTS.host, port: DEFAULTS.port, portmap: false, busyPollUs: DEFAULT_BUSY_POLL_US, ...(values['image-cache'] !== undefined && { imageCache: values['image-cache'] }) },
    };
  }
  if (values['reset-client'] !== undefined) {
    if (values.control === undefined || values.export === undefined) throw new UsageError('--reset-client needs --control (the server\'s socket) and --export (the export path)');
    const extra = Object.keys(values).find((k) => !['reset-client', 'control', 'export', 'log-format'].includes(k));
    if (extra !== undefined) throw new UsageError(`--reset-client sends a command; --${extra} does not go with it`);
    return {
      help: false, demo: false, given: new Set(), logFormat,
      reset: { control: values.control, export: checkExportPath(values.export, '--export'), client: values['reset-client'] },
      options: { exports: [], host: DEFAULTS.host, port: DEFAULTS.port, portmap: false, busyPollUs: DEFAULT_BUSY_POLL_US },
    };
  }
  if (values.config !== undefined) {
    const clash = EXPORT_FLAGS.find((f) => values[f] !== undefined);
    if (clash !== undefined) throw new UsageError(`--${clash} describes the one export of the command line; with --config, exports come from the file`);
  }
  const lowers = values.lower === undefined ? [] : values.lower.split(':').filter((s) => s !== '');
  if (values.lower !== undefined && lowers.length === 0) throw new UsageError('--lower names no directory');
  if ((values.upper === undefined) !== (values.workdir === undefined)) {
    throw new UsageError('--upper and --workdir go together (the workdir holds copy-up temporaries)');
  }
  if (values.upper !== undefined && lowers.length === 0 && values.image === undefined) throw new UsageError('--upper needs --lower or --image');
  if (values.image !== undefined) checkImage(values.image, '--image');
  checkPerClient(values, '--upper/--workdir');
  const whiteout = checkWhiteout(values.whiteout ?? 'oci', '--whiteout');
  const exportPath = checkExportPath(values.export ?? DEFAULTS.exportPath, '--export');
  let clients: ParsedRule[];
  try {
    clients = parseClientRules(values.clients ?? DEFAULT_CLIENTS);
  } catch (err) {
    if (err instanceof ClientRuleError) throw new UsageError(`--clients: ${err.message}`);
    throw err;
  }
  if (values.clients !== undefined && clients.length === 0) throw new UsageError('--clients names no client');
  const demo = lowers.length === 0 && values.image === undefined && values.config === undefined;
  const mountPort = port(values['mount-port'], '--mount-port');
  const busyPollUs = values['busy-poll'] === undefined ? DEFAULT_BUSY_POLL_US : Number(values['busy-poll']);
  if (!Number.isInteger(busyPollUs) || busyPollUs < 0 || busyPollUs > 1_000_000) {
    throw new UsageError(`--busy-poll wants microseconds 0-1000000, got '${values['busy-poll']}'`);
  }
  const graceSeconds = values['grace-period'] === undefined ? undefined : checkGrace(Number(values['grace-period']), values['grace-period'], '--grace-period');
  const given = new Set<keyof ServerOptions>();
  if (values.host !== undefined) given.add('host');
  if (values.port !== undefined) given.add('port');
  if (mountPort !== undefined) given.add('mountPort');
  if (values['no-portmap'] !== undefined) given.add('portmap');
  if (values['busy-poll'] !== undefined) given.add('busyPollUs');
  if (values.control !== undefined) given.add('control');
  if (graceSeconds !== undefined) given.add('graceSeconds');
  if (values['nsm-dir'] !== undefined) given.add('nsmDir');
  if (values['image-cache'] !== undefined) given.add('imageCache');
  if (values['plain-http'] !== undefined) given.add('plainHttp');
  const metrics = values.metrics === undefined ? undefined : parseListen(values.metrics, '--metrics', METRICS_HOST);
  if (metrics !== undefined) given.add('metrics');
  const limits: Partial<Record<keyof RpcLimits, number>> = {};
  for (const l of LIMIT_OPTIONS) {
    const v = (values as Record<string, unknown>)[l.name];
    if (v !== undefined) limits[l.field] = parseLimit(l, v, `--${l.name}`);
  }
  if (Object.keys(limits).length > 0) given.add('limits');
  return {
    help: values.help === true,
    demo,
    logFormat,
    ...(values.config !== undefined && { config: values.config }),
    given,
    options: {
      exports: values.config !== undefined ? [] : [{
        path: exportPath,
        lowers,
        ...(values.image !== undefined && { image: values.image }),
        ...(values.upper !== undefined && { upper: values.upper }),
        ...(values.workdir !== undefined && { workdir: values.workdir }),
        ...(values.state !== undefined && { state: values.state }),
        whiteoutFormat: whiteout,
        // 0 keeps the handles that clients of versions before export ids hold (identity.ts).
        fsid: 0,
        clients,
        defaultClients: values.clients === undefined,
        source: 'the command line',
      }],
      host: values.host ?? (demo ? '127.0.0.1' : DEFAULTS.host),
      port: port(values.port, '--port') ?? DEFAULTS.port,
      ...(mountPort !== undefined && { mountPort }),
      portmap: values['no-portmap'] !== true,
      busyPollUs,
      ...(values.control !== undefined && { control: values.control }),
      ...(metrics !== undefined && { metrics }),
      ...(graceSeconds !== undefined && { graceSeconds }),
      ...(values['nsm-dir'] !== undefined && { nsmDir: values['nsm-dir'] }),
      ...(values['image-cache'] !== undefined && { imageCache: values['image-cache'] }),
      ...(values['plain-http'] === true && { plainHttp: true }),
      ...(Object.keys(limits).length > 0 && { limits }),
    },
  };
}

export function checkGrace(n: number, given: unknown, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > MAX_GRACE_SECONDS) throw new UsageError(`${what} wants seconds 0-${MAX_GRACE_SECONDS}, got '${String(given)}'`);
  return n;
}

/**
 * A listening address: 'PORT' (on `defaultHost`), 'HOST:PORT', or '[IPV6]:PORT'. Port 0
 * takes any free port (tests); the bound port is printed.
 */
export function parseListen(value: string, what: string, defaultHost: string): Listen {
  const m = /^(?:\[([^\]]+)\]:|([^:[\]]+):)?(\d{1,5})$/.exec(value);
  const n = Number(m?.[3]);
  if (m === null || n > 65535) throw new UsageError(`${what} wants PORT, HOST:PORT or [IPV6]:PORT, got '${value}'`);
  const host = m[1] ?? m[2] ?? defaultHost;
  if (m[1] !== undefined && isIP(host) !== 6) throw new UsageError(`${what}: '${host}' in brackets is not an IPv6 address`);
  return { host, port: n };
}

/** An image reference, parsed now so that a typo is a usage error, not a failed start. */
export function checkImage(value: string, what: string): string {
  try {
    parseImageRef(value);
  } catch (err) {
    if (err instanceof ImageError) throw new UsageError(`${what}: ${err.message}`);
    throw err;
  }
  return value;
}

export function checkWhiteout(value: string, what: string): WhiteoutFormat {
  if (value !== 'oci' && value !== 'overlayfs') throw new UsageError(`${what} is oci or overlayfs, got '${value}'`);
  return value;
}

/** An export path: absolute, at most MNTPATHLEN, normalized to no trailing slash. */
export function checkExportPath(value: string, what: string): string {
  if (!value.startsWith('/') || Buffer.byteLength(value) > 1024 || value.split('/').some((c) => c === '.' || c === '..')) {
    throw new UsageError(`${what} must be an absolute path without . or .. (at most 1024 bytes), got '${value}'`);
  }
  const trimmed = value.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed.replace(/\/{2,}/g, '/');
}

/**
 * A union per client: {client} in both the upper and the workdir (each client's must differ),
 * no fixed state directory, and names only there, each a plain file name for an IP address.
 */
export function checkPerClient(e: Pick<ExportConfig, 'upper' | 'workdir' | 'state' | 'names'>, what: string): void {
  const inUpper = e.upper?.includes('{client}') === true;
  if (inUpper !== (e.workdir?.includes('{client}') === true)) throw new UsageError(`${what}: {client} goes in both the upper and the workdir, or in neither`);
  if (inUpper && e.state !== undefined) throw new UsageError(`${what}: a union per client keeps its state in its workdir; drop the state directory`);
  if (e.names === undefined) return;
  if (!inUpper) throw new UsageError(`${what}: names are for an export with {client} in its upper`);
  for (const [name, address] of Object.entries(e.names)) {
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw new UsageError(`${what}: '${name}' cannot name a directory`);
    if (isIP(address) === 0) throw new UsageError(`${what}: the name ${name} is for '${address}', which is not an IP address`);
  }
}

export function checkFsid(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > FSID_MAX) {
    throw new UsageError(`${what} wants an integer 0-${FSID_MAX}, got '${String(value)}'`);
  }
  return value;
}
