/**
 * What the unions of this process have done, summed over all of them: counted where it
 * happens with one increment of a plain number, read by the metrics endpoint (src/metrics)
 * when it is scraped. Process-wide like the descriptor budget (fd-cache.ts PROCESS_FDS):
 * unions open and close (per-client unions, reloads) and totals must not go backwards.
 */
export const vfsCounters = {
  /** node(): the object was live in memory, or had to be rebuilt from the identity store. */
  nodeHits: 0,
  nodeMisses: 0,
  /** Merged directory listings: found in the union's cache, or read from the layers. */
  listingHits: 0,
  listingMisses: 0,
  /** File descriptors: reused from the fd cache, or opened. */
  fdHits: 0,
  fdMisses: 0,
  /** Copy-ups done, the file data they copied, the time they took, and those that failed. */
  copyUps: 0,
  copyUpBytes: 0,
  copyUpSeconds: 0,
  copyUpFailures: 0,
};

/** What one union holds, for the metrics endpoint's gauges. */
export interface UnionUsage {
  /** Objects live in memory (the node cache). */
  readonly nodes: number;
  /** Heap bytes of cached merged listings (an estimate, readdir.ts entryBytes). */
  readonly listingBytes: number;
  /** Records of the identity store (every object a client has reached, ever). */
  readonly identityRecords: number;
}
