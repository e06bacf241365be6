/**
 * The unions' metrics, read when scraped: per export, what its open unions hold (ExportSet.usage);
 * process-wide, what all unions have done (src/vfs/stats.ts: plain numbers the file system path
 * adds to) and the descriptor budget. Nothing here runs on a call's path.
 */
import { Gauge, type Registry } from 'prom-client';
import { totalsCounter } from './tally.js';
import { PROCESS_FDS, vfsCounters, type UnionUsage } from '../vfs/index.js';

export interface ExportUsage {
  readonly path: string;
  /** Unions open: one, or one per client for a {client} export. */
  readonly unions: number;
  readonly usage: UnionUsage;
}

export function registerUnionMetrics(registry: Registry, exports: () => readonly ExportUsage[]): void {
  const registers = [registry];
  const byExport = (name: string, help: string, pick: (e: ExportUsage) => number): void => {
    new Gauge({
      name, help, labelNames: ['export'], registers,
      collect() {
        this.reset();
        for (const e of exports()) this.set({ export: e.path }, pick(e));
      },
    });
  };
  byExport('union_nfsd_unions', 'Unions open (one per client on a per-client export).', (e) => e.unions);
  byExport('union_nfsd_node_cache_nodes', 'Objects live in memory.', (e) => e.usage.nodes);
  byExport('union_nfsd_listing_cache_bytes', 'Heap bytes of cached merged directory listings.', (e) => e.usage.listingBytes);
  byExport('union_nfsd_identity_records', 'Records of the identity stores (objects ever reached by a client).', (e) => e.usage.identityRecords);
  new Gauge({ name: 'union_nfsd_open_files', help: 'File descriptors the unions hold open.', registers, collect() { this.set(PROCESS_FDS.open); } });
  new Gauge({ name: 'union_nfsd_open_files_limit', help: 'The budget of file descriptors the unions may hold open.', registers, collect() { this.set(PROCESS_FDS.max); } });

  const fromVfs = (name: string, help: string, read: () => number): void =>
    totalsCounter({ name, help, registers }, () => [[{}, read()]]);
  const cacheLookups = (name: string, help: string, hits: () => number, misses: () => number): void =>
    totalsCounter({ name, help, labelNames: ['result'], registers }, () => [[{ result: 'hit' }, hits()], [{ result: 'miss' }, misses()]]);
  cacheLookups('union_nfsd_node_cache_lookups_total', 'Objects looked up in memory: found, or rebuilt from the identity store.', () => vfsCounters.nodeHits, () => vfsCounters.nodeMisses);
  cacheLookups('union_nfsd_listing_cache_lookups_total', 'Merged listings: found in the cache, or read from the layers.', () => vfsCounters.listingHits, () => vfsCounters.listingMisses);
  cacheLookups('union_nfsd_fd_cache_lookups_total', 'File descriptors: reused, or opened.', () => vfsCounters.fdHits, () => vfsCounters.fdMisses);
  fromVfs('union_nfsd_copy_ups_total', 'Objects copied up from a lower layer (directories included).', () => vfsCounters.copyUps);
  fromVfs('union_nfsd_copy_up_bytes_total', 'File data copied up.', () => vfsCounters.copyUpBytes);
  fromVfs('union_nfsd_copy_up_seconds_total', 'Time spent copying up, summed over copy-ups.', () => vfsCounters.copyUpSeconds);
  fromVfs('union_nfsd_copy_up_failures_total', 'Copy-ups that failed (ENOSPC among them).', () => vfsCounters.copyUpFailures);
}
