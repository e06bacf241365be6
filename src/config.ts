/**
 * Command-line options -> ServerOptions. The names follow overlayfs's mount options
 * (lowerdir/upperdir/workdir become --lower/--upper/--workdir), so a line from /etc/fstab
 * translates one for one. Validation happens here, once, with messages a user can act on.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_BUSY_POLL_US } from './rpc/busy-poll.js';

export type WhiteoutFormat = 'oci' | 'overlayfs';

export interface ServerOptions {
  /** Lower layers, top-most first (overlayfs order). */
  readonly lowers: readonly string[];
  readonly upper?: string;
  readonly workdir?: string;
  /** Where the identity store lives when there is no workdir. */
  readonly state?: string;
  readonly exportPath: string;
  readonly host: string;
  /** NFS port; MOUNT answers here too. 0 = any free port. */
  readonly port: number;
  /** An extra port that serves MOUNT (and NFS), for clients configured with mountport=. */
  readonly mountPort?: number;
  /** Serve a portmapper on 111, or register with the system's rpcbind when it owns 111. */
  readonly portmap: boolean;
  readonly whiteoutFormat: WhiteoutFormat;
  /** Microseconds the event loop keeps polling after a reply (src/rpc/busy-poll.ts); 0 = off. */
  readonly busyPollUs: number;
}

export const DEFAULTS = {
  exportPath: '/union',
  host: '0.0.0.0',
  port: 2049,
} as const;

export const USAGE = `usage: union-nfsd [--lower A:B:C [--upper U --workdir W]] [options]

With no --lower, serves a small demo union that it creates itself.

  --lower DIRS       read-only lower layers, colon-separated, top-most first
  --upper DIR        writable upper layer (omit for a read-only export)
  --workdir DIR      work directory on the same filesystem as --upper
  --state DIR        identity store for a read-only export (default: under $XDG_STATE_HOME)
  --export PATH      export path clients mount (default ${DEFAULTS.exportPath})
  --host ADDR        address to listen on (default ${DEFAULTS.host}; the demo: 127.0.0.1)
  --port N           NFS port, MOUNT answers here too (default ${DEFAULTS.port}, 0 = any)
  --mount-port N     an additional port for MOUNT
  --no-portmap       do not serve or register with a portmapper on port 111
  --whiteout FORMAT  how the upper layer records deletions: oci (default) or overlayfs
  --busy-poll US     keep polling for calls US microseconds after each reply instead of
                     sleeping (default ${DEFAULT_BUSY_POLL_US}; 0 = off: no CPU spent while idle)
  -h, --help         this text

Environment: UNION_NFSD_LOG=error|warn|info|debug (default info).`;

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Parsed {
  readonly help: boolean;
  /** True when no layers were given: serve the demo union. */
  readonly demo: boolean;
  readonly options: Omit<ServerOptions, 'lowers'> & { lowers: readonly string[] };
}

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
        'busy-poll': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const lowers = values.lower === undefined ? [] : values.lower.split(':').filter((s) => s !== '');
  if (values.lower !== undefined && lowers.length === 0) throw new UsageError('--lower names no directory');
  if ((values.upper === undefined) !== (values.workdir === undefined)) {
    throw new UsageError('--upper and --workdir go together (the workdir holds copy-up temporaries)');
  }
  if (values.upper !== undefined && lowers.length === 0) throw new UsageError('--upper needs --lower');
  const whiteout = values.whiteout ?? 'oci';
  if (whiteout !== 'oci' && whiteout !== 'overlayfs') throw new UsageError(`--whiteout is oci or overlayfs, got '${whiteout}'`);
  const exportPath = values.export ?? DEFAULTS.exportPath;
  if (!exportPath.startsWith('/') || exportPath.length > 1024) throw new UsageError(`--export must be an absolute path, got '${exportPath}'`);
  const demo = lowers.length === 0;
  const mountPort = port(values['mount-port'], '--mount-port');
  const busyPollUs = values['busy-poll'] === undefined ? DEFAULT_BUSY_POLL_US : Number(values['busy-poll']);
  if (!Number.isInteger(busyPollUs) || busyPollUs < 0 || busyPollUs > 1_000_000) {
    throw new UsageError(`--busy-poll wants microseconds 0-1000000, got '${values['busy-poll']}'`);
  }
  return {
    help: values.help === true,
    demo,
    options: {
      lowers,
      ...(values.upper !== undefined && { upper: values.upper }),
      ...(values.workdir !== undefined && { workdir: values.workdir }),
      ...(values.state !== undefined && { state: values.state }),
      exportPath,
      host: values.host ?? (demo ? '127.0.0.1' : DEFAULTS.host),
      port: port(values.port, '--port') ?? DEFAULTS.port,
      ...(mountPort !== undefined && { mountPort }),
      portmap: values['no-portmap'] !== true,
      whiteoutFormat: whiteout,
      busyPollUs,
    },
  };
}
