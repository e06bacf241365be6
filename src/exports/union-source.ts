/**
 * Which union a client of an export sees: the export's one union, or, for an export whose
 * upper and workdir contain `{client}`, a union of the client's own over the shared lowers.
 *
 * Rule: a per-client union is named by the client's address (IPv4-mapped IPv6 written as
 * IPv4), or by the name the configuration gives that address (`names:`), and opened on the
 * client's first call or MNT; its upper and workdir are created then, the upper's root taking
 * the mode, owner and times of the top-most lower's root (as overlayfs's root looks before any
 * change). Each union has its own identity store and handle key, so a handle taken by one
 * client is BADHANDLE in every other client's union. What depends only on the lowers (their
 * overlayfs xattrs) is read once per layer for all unions (vfs/whiteout.ts).
 * Example: upper /srv/n/{client}/upper, client 10.0.1.7 named node7 -> /srv/n/node7/upper.
 * Races: two first calls of one client open one union (the pending open is shared). A reset
 * waits for the open in flight when it was asked, closes the union, then removes its
 * directories; meanwhile the client's union is not handed out, and calls arriving then open a
 * fresh union once the reset is done.
 */
import * as fs from 'node:fs';
import { child } from '../log.js';
import type { ExportConfig } from '../config.js';
import { plainAddress } from './client-rules.js';
import { openUnion, type UnionFs } from '../vfs/index.js';

const log = child('exports');

export const CLIENT_PLACEHOLDER = '{client}';

export interface UnionSource {
  /** The union `address` sees, when it is open: the calls' synchronous path. */
  peek(address: string): UnionFs | undefined;
  /** The union `address` sees, opening (and for a new client, creating) it if needed. */
  open(address: string): Promise<UnionFs>;
  /** Discards one client's union (per-client) or fails (ENOTSUP): the reset command. */
  reset(client: string): Promise<void>;
  /** The unions open now. */
  opened(): Iterable<UnionFs>;
  close(): Promise<void>;
}

/**
 * The caches of one client's union: a union's defaults (32,768 nodes, 32 MiB of listings,
 * 131,072 identity records) fit a whole export, and a per-client export has as many unions
 * as its rules admit clients.
 * Listings of lower-only directories are shared and bounded once for all (vfs/readdir.ts).
 */
const PER_CLIENT_CACHES = { nodeCacheMax: 4096, listingCacheBytes: 4 * 1024 * 1024, identityCacheRecords: 16384 } as const;

function unionOptions(e: ExportConfig, upper?: string, workdir?: string): Parameters<typeof openUnion>[0] {
  return {
    ...(upper !== undefined && PER_CLIENT_CACHES),
    lowers: e.lowers,
    ...((upper ?? e.upper) !== undefined && { upper: upper ?? e.upper }),
    ...((workdir ?? e.workdir) !== undefined && { workdir: workdir ?? e.workdir }),
    ...(e.state !== undefined && { state: e.state }),
    whiteoutFormat: e.whiteoutFormat,
    ...(e.lowerFormats !== undefined && { lowerFormats: e.lowerFormats }),
    fsid: e.fsid,
  };
}

export function isPerClient(e: ExportConfig): boolean {
  return e.upper?.includes(CLIENT_PLACEHOLDER) === true;
}

/** The source of an export's unions: opens the one union now, or per-client unions on demand. */
export async function openSource(e: ExportConfig): Promise<UnionSource> {
  if (isPerClient(e)) return new PerClientUnions(e);
  return oneUnion(await openUnion(unionOptions(e)), e.path);
}

/** One union that every client of the export sees. */
export function oneUnion(u: UnionFs, path: string): UnionSource {
  return {
    peek: () => u,
    open: () => Promise.resolve(u),
    reset: () => Promise.reject(Object.assign(new Error(`${path} has one union for all its clients; only an export with ${CLIENT_PLACEHOLDER} in its upper resets per client`), { code: 'ENOTSUP' })),
    opened: () => [u],
    close: () => u.close(),
  };
}

class PerClientUnions implements UnionSource {
  private readonly open_ = new Map<string, UnionFs>();
  private readonly opening = new Map<string, Promise<UnionFs>>();
  /** Clients being reset: their next union opens once the old one is gone. */
  private readonly resetting = new Map<string, Promise<void>>();
  /** Address -> name, from the configuration's `names:` (inverted). */
  private readonly nameOf: Map<string, string>;

  constructor(private readonly e: ExportConfig) {
    this.nameOf = new Map(Object.entries(e.names ?? {}).map(([name, address]) => [address, name]));
  }

  private key(address: string): string {
    const a = plainAddress(address);
    return this.nameOf.get(a) ?? a;
  }

  peek(address: string): UnionFs | undefined {
    const name = this.key(address);
    // A union being reset is not handed out: calls wait in open() for the fresh one.
    return this.resetting.has(name) ? undefined : this.open_.get(name);
  }

  open(address: string): Promise<UnionFs> {
    const name = this.key(address);
    const u = this.peek(address);
    if (u !== undefined) return Promise.resolve(u);
    const resetting = this.resetting.get(name);
    // An open from before a reset yields the union the reset closes: open anew after it.
    let p = resetting === undefined ? this.opening.get(name) : undefined;
    if (p === undefined) {
      const opened: Promise<UnionFs> = (resetting ?? Promise.resolve()).catch(() => undefined)
        .then(() => this.create(name))
        .finally(() => { if (this.opening.get(name) === opened) this.opening.delete(name); });
      p = opened;
      this.opening.set(name, p);
    }
    return p;
  }

  private dirs(name: string): { upper: string; workdir: string } {
    return {
      upper: this.e.upper!.replaceAll(CLIENT_PLACEHOLDER, name),
      workdir: this.e.workdir!.replaceAll(CLIENT_PLACEHOLDER, name),
    };
  }

  private async create(name: string): Promise<UnionFs> {
    const { upper, workdir } = this.dirs(name);
    if (!fs.existsSync(upper)) {
      fs.mkdirSync(upper, { recursive: true });
      const top = fs.statSync(this.e.lowers[0]!);
      fs.chownSync(upper, top.uid, top.gid);
      fs.chmodSync(upper, top.mode & 0o7777);
      fs.utimesSync(upper, top.atime, top.mtime);
      log.info(`export ${this.e.path}: new union for client ${name} (upper ${upper})`);
    }
    fs.mkdirSync(workdir, { recursive: true });
    const u = await openUnion(unionOptions(this.e, upper, workdir));
    this.open_.set(name, u);
    return u;
  }

  reset(client: string): Promise<void> {
    const name = this.key(client);
    const prior = this.resetting.get(name) ?? Promise.resolve();
    // The open in flight now is the one to wait for and close (later ones open after the reset).
    const pending = this.opening.get(name);
    const done = prior.catch(() => undefined).then(() => this.discard(name, client, pending)).finally(() => {
      if (this.resetting.get(name) === done) this.resetting.delete(name);
    });
    this.resetting.set(name, done);
    return done;
  }

  private async discard(name: string, client: string, pending: Promise<UnionFs> | undefined): Promise<void> {
    const u = this.open_.get(name) ?? await pending?.catch(() => undefined);
    this.open_.delete(name);
    await u?.close();
    const { upper, workdir } = this.dirs(name);
    if (u === undefined && !fs.existsSync(upper)) throw Object.assign(new Error(`${this.e.path} has no union for client ${client}`), { code: 'ENOENT' });
    fs.rmSync(upper, { recursive: true, force: true });
    fs.rmSync(workdir, { recursive: true, force: true });
    log.info(`export ${this.e.path}: client ${name} reset to the base (upper ${upper} discarded)`);
  }

  opened(): Iterable<UnionFs> {
    return this.open_.values();
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.opening.values()]);
    await Promise.all([...this.open_.values()].map((u) => u.close()));
    this.open_.clear();
  }
}
