/**
 * The workloads of issue 6, as client invocations. Each workload runs on a list of servers; a
 * step is one run of bench/client/nfsbench (the URL is inserted after the subcommand). Steps
 * with `measure: false` prepare or clean up and are not reported. Everything a workload
 * mutates is named after the round, so every round starts from fresh state.
 */

/** union = union-nfsd over 3 lowers + upper; union20 = over 20 lowers; plain = ganesha over
 * the merged content as a plain directory; overlay(20) = ganesha over kernel overlayfs, both
 * at ganesha's default settings (attributes cached); plain0 = a second ganesha over the same
 * plain directory with Attr_Expiration_Time = 0 (attributes re-read on every call). */
export type ServerKind = 'union' | 'union20' | 'plain' | 'overlay' | 'overlay20' | 'plain0';

export interface Sizes {
  seq: number;
  req: number;
  rand: number;
  qd1Count: number;
  qd16Count: number;
  randMaxSec: number;
  meta: number;
  list: number;
  copyup: number;
  lookupCount: number;
  lookupMaxSec: number;
  leaves: number;
  depth: number;
  mixedClients: number;
  mixedSec: number;
  /** Calls of each procedure in the per-call latency workload. */
  calls: number;
}

export interface Step {
  args: (string | number)[];
  measure: boolean;
  timeoutSec: number;
}

export interface Workload {
  name: string;
  servers: ServerKind[];
  /** run on that server only in the first N rounds (for a peer that is far too slow to repeat) */
  maxRounds?: Partial<Record<ServerKind, number>>;
  steps(s: Sizes, round: number, server: ServerKind): Step[];
}

const ALL: ServerKind[] = ['union', 'plain', 'overlay', 'plain0'];

export function leafDir(s: Sizes): string {
  let p = '/deep';
  for (let i = 1; i < s.depth; i++) p += `/d${i}`;
  return p;
}

export function listName(s: Sizes): string {
  return `list-${s.list >= 1000 ? `${Math.round(s.list / 1000)}k` : s.list}`;
}

export const WORKLOADS: Workload[] = [
  {
    // one call at a time, each timed (p50, p99): NULL, GETATTR, LOOKUP, ACCESS, 4 KiB READ,
    // CREATE, REMOVE through libnfs's raw RPC layer (nothing cached by the client)
    name: 'calls',
    servers: ALL,
    steps: (s) => [{ args: ['calls', '/meta', s.calls, 20], measure: true, timeoutSec: 200 }],
  },
  {
    // write, read back and remove, on one server before the next: each writes its 1 GiB into
    // the memory the previous one just freed (written in turn, a later writer got colder pages
    // and paid page faults in the hypervisor that are no server's doing)
    name: 'seq',
    servers: ALL,
    steps: (s, r) => [
      { args: ['seqwrite', `/seq/r${r}.bin`, s.seq, s.req, 10 + r], measure: true, timeoutSec: 300 },
      { args: ['seqread', `/seq/r${r}.bin`, s.seq, s.req, 10 + r], measure: true, timeoutSec: 300 },
      { args: ['rm', `/seq/r${r}.bin`], measure: false, timeoutSec: 60 },
    ],
  },
  {
    name: 'randread',
    servers: ALL,
    steps: (s, r) => [
      { args: ['randread', '/rand.bin', s.rand, 1, s.qd1Count, s.randMaxSec, 1, r], measure: true, timeoutSec: s.randMaxSec + 60 },
      { args: ['randread', '/rand.bin', s.rand, 16, s.qd16Count, s.randMaxSec, 1, r], measure: true, timeoutSec: s.randMaxSec + 60 },
    ],
  },
  {
    name: 'meta', // create, stat, list, unlink in a new directory under a 3-layer merged one
    servers: ALL,
    steps: (s, r) => [{ args: ['meta', `/meta/r${r}`, s.meta, 120], measure: true, timeoutSec: 400 }],
  },
  {
    name: 'list',
    servers: ALL,
    // ganesha over overlayfs lists 100k entries in ~70 s here (overlayfs re-walks its merged
    // list on every seek, and ganesha seeks per chunk): one sample is enough to rank it
    maxRounds: { overlay: 1 },
    steps: (s) => [{ args: ['list', '/big', 'f', s.list, listName(s)], measure: true, timeoutSec: 300 }],
  },
  {
    // first write to a big lower file; ganesha only has it through overlayfs. Each server first
    // copies up (and removes) a file of the same size, untimed: the timed copy then fills memory
    // that server just freed, as the second copy of a round always did, instead of paying the
    // host's first touch of fresh pages only when it happens to go first (bench/README item 3)
    name: 'copyup',
    servers: ['union', 'overlay'],
    steps: (s, r) => [
      { args: ['copyup', `/copyup/w${r}.bin`, s.copyup, 200 + r, 240], measure: false, timeoutSec: 300 },
      { args: ['copyup', `/copyup/c${r}.bin`, s.copyup, 100 + r, 240], measure: true, timeoutSec: 300 },
    ],
  },
  {
    name: 'lookup3',
    servers: ALL,
    steps: (s, r) => [{ args: ['lookup', '/deep', s.depth, s.leaves, s.lookupCount, s.lookupMaxSec, `lookup-${s.depth}deep-3layers`, r], measure: true, timeoutSec: s.lookupMaxSec + 60 }],
  },
  {
    name: 'lookup20',
    servers: ['union20', 'plain', 'overlay20', 'plain0'],
    steps: (s, r) => [{ args: ['lookup', '/deep', s.depth, s.leaves, s.lookupCount, s.lookupMaxSec, `lookup-${s.depth}deep-20layers`, r], measure: true, timeoutSec: s.lookupMaxSec + 60 }],
  },
  {
    name: 'mixed',
    servers: ['union', 'plain', 'plain0'],
    steps: (s, r) => [{ args: ['mixed', `/mix/r${r}`, s.mixedClients, s.mixedSec, '/rand.bin', s.rand, leafDir(s), s.leaves], measure: true, timeoutSec: s.mixedSec + 120 }],
  },
];
