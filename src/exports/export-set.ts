/**
 * The exports being served, as configured: their unions opened, their rules resolved, and the
 * ExportTable the calls consult, rebuilt on every reload.
 *
 * Rule (reload, SIGHUP): the new configuration is checked whole (rules, host names, directory
 * overlaps) before anything changes; a bad one is refused and the old one stays. An export
 * whose path and union settings (layers, upper, workdir, state, whiteout, fsid, names) are
 * unchanged keeps its open union, so its clients see nothing (no ESTALE, warm caches); only
 * its rules are replaced. An export that is new, changed or gone leaves the table
 * first, then its old union closes, then a changed or new one opens (one state directory is
 * never open twice).
 * Example: adding /node8 and changing 10.0.1.7's rule on /base opens /node8's union and keeps
 * /base's union, its handles and its caches.
 * Races: apply() calls are serialised; calls in flight on a union being closed finish on it
 * (its close waits for copy-ups) or fail as a stale handle would.
 */
import { UsageError, type ExportConfig } from '../config.js';
import { child } from '../log.js';
import { byPrecedence, ClientRuleError, describeRules, resolveClientRules, type ClientRule } from './client-rules.js';
import { ExportTable, type Export } from './export-table.js';
import { checkLayout } from './layout.js';
import { openSource, type UnionSource } from './union-source.js';
import type { UnionUsage } from '../vfs/index.js';
import type { ImageStore } from '../image/index.js';

const log = child('exports');

/**
 * Everything about `configs` that needs the machine, checked without changing anything: the
 * directories' overlaps (layout.ts) and the client rules' host names. Resolves to each
 * export's rules; throws UsageError naming the export.
 */
export async function checkExports(configs: readonly ExportConfig[]): Promise<ClientRule[][]> {
  checkLayout(configs);
  return Promise.all(configs.map((e) => resolveClientRules(e.clients).catch((err: unknown) => {
    throw err instanceof ClientRuleError ? new UsageError(`${e.source}: export ${e.path}: clients: ${err.message}`) : err;
  })));
}

/** How an export's upper is used, in words: 'read-only', 'read-write', 'a union per client'. */
export function unionKind(c: ExportConfig): string {
  return c.upper === undefined ? 'read-only' : c.upper.includes('{client}') ? 'a union per client' : 'read-write';
}

interface Served {
  readonly config: ExportConfig;
  readonly unions: UnionSource;
}

/** What makes an export's union: equal keys, same union (rules and source lines may differ). */
function unionKey(e: ExportConfig): string {
  return JSON.stringify([e.path, e.lowers, e.upper, e.workdir, e.state, e.whiteoutFormat, e.fsid, e.names ?? null]);
}

export class ExportSet {
  private served = new Map<string, Served>();
  private current = new ExportTable([]);
  private applying: Promise<unknown> = Promise.resolve();

  /** `images` pulls and unpacks the layers of exports that name an image. */
  constructor(private readonly images?: ImageStore) {}

  /** The table calls consult now. */
  table(): ExportTable {
    return this.current;
  }

  /** Serve `configs`: at start, and again on every reload. Throws UsageError for a bad configuration. */
  apply(configs: readonly ExportConfig[]): Promise<void> {
    const run = this.applying.then(() => this.applyNow(configs));
    this.applying = run.catch(() => undefined);
    return run;
  }

  /**
   * The configurations with their images' layers appended to their lowers (pulled and
   * unpacked first, so a pull that fails changes nothing that is served).
   */
  private async withImages(configs: readonly ExportConfig[]): Promise<ExportConfig[]> {
    const out: ExportConfig[] = [];
    for (const c of configs) {
      if (c.image === undefined) {
        out.push(c);
        continue;
      }
      if (this.images === undefined) throw new UsageError(`${c.source}: export ${c.path}: images are not served here`);
      try {
        const layers = await this.images.lowers(c.image);
        out.push({ ...c, lowers: [...c.lowers, ...layers], lowerFormats: [...c.lowers.map(() => c.whiteoutFormat), ...layers.map(() => 'oci' as const)] });
      } catch (err) {
        throw new UsageError(`${c.source}: export ${c.path}: ${(err as Error).message}`);
      }
    }
    return out;
  }

  private async applyNow(given: readonly ExportConfig[]): Promise<void> {
    const configs = await this.withImages(given);
    const rules = await checkExports(configs);
    const keep = new Map<string, Served>();
    const retire: Served[] = [];
    const wanted = new Map(configs.map((c) => [c.path, c]));
    for (const [path, s] of this.served) {
      const c = wanted.get(path);
      if (c !== undefined && unionKey(c) === unionKey(s.config)) keep.set(path, { config: c, unions: s.unions });
      else retire.push(s);
    }
    // What stays serves on while the rest closes; then the new and changed unions open.
    this.served = keep;
    this.publish(configs, rules);
    await Promise.all(retire.map((s) => s.unions.close()));
    for (const s of retire) log.info(`export ${s.config.path}: ${wanted.has(s.config.path) ? 'changed, reopening' : 'no longer served'}`);
    const failures: string[] = [];
    for (const c of configs) {
      if (this.served.has(c.path)) continue;
      try {
        this.served.set(c.path, { config: c, unions: await openSource(c) });
      } catch (err) {
        failures.push(`${c.source}: export ${c.path}: ${(err as Error).message}`);
      }
    }
    this.publish(configs, rules);
    // At start a union that cannot open is fatal; on reload the others go on being served.
    if (failures.length > 0) throw new Error(failures.join('\n'));
  }

  /** Swap in a table of the exports whose unions are open, with their new rules. */
  private publish(configs: readonly ExportConfig[], rules: readonly ClientRule[][]): void {
    const exports: Export[] = [];
    configs.forEach((c, i) => {
      const s = this.served.get(c.path);
      if (s !== undefined) exports.push({ path: c.path, fsid: c.fsid, unions: s.unions, clients: byPrecedence(rules[i]!) });
    });
    this.current = new ExportTable(exports);
  }

  /** Log what is served, one line per export. */
  describe(): void {
    for (const e of this.current.exports) {
      const c = this.served.get(e.path)!.config;
      log.info(`export ${e.path} (fsid ${e.fsid}, ${unionKind(c)}, ${c.lowers.length} lower layer(s)) to ${describeRules(e.clients)}`,
        { export: e.path });
      if (c.defaultClients) log.info('no --clients given: only loopback clients are admitted, from source ports below 1024 (root or the kernel client); pass --clients in exports(5) syntax to admit others');
    }
  }

  /** Per export: its open unions and what they hold, summed (the metrics endpoint's gauges). */
  usage(): { path: string; unions: number; usage: UnionUsage }[] {
    return [...this.served.values()].map((s) => {
      let unions = 0, nodes = 0, listingBytes = 0, identityRecords = 0;
      for (const u of s.unions.opened()) {
        const x = u.usage();
        unions++;
        nodes += x.nodes;
        listingBytes += x.listingBytes;
        identityRecords += x.identityRecords;
      }
      return { path: s.config.path, unions, usage: { nodes, listingBytes, identityRecords } };
    });
  }

  /** The reset command: discard `client`'s union of the export at `path` (a per-client export). */
  async reset(path: string, client: string): Promise<void> {
    const s = this.served.get(path);
    if (s === undefined) throw Object.assign(new Error(`no export ${path}`), { code: 'ENOENT' });
    await s.unions.reset(client);
  }

  async close(): Promise<void> {
    await this.applying;
    const all = [...this.served.values()];
    this.served.clear();
    this.current = new ExportTable([]);
    await Promise.all(all.map((s) => s.unions.close()));
  }
}
