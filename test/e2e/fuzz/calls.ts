/**
 * Valid calls of every procedure the server serves (NFS v3, MOUNT v3, NLM v4, NSM v1), built
 * around real file handles, and the mutations a fuzzer makes of them: bit flips, truncation,
 * length fields and counts set to edge values, 64-bit offsets above 2^53, wrong program,
 * version or procedure, AUTH_SYS bodies with more than 16 gids or an over-long machine name.
 * Seeded (xorshift), so a failure reproduces from its seed.
 */
import { XdrWriter } from '@nfs-ts/xdr';
import { auth_flavor, encodeCallHeader, type OpaqueAuth } from '../../../src/rpc/message.js';
import { encodeAuthSys } from '../../../src/rpc/auth.js';
import type { Rng } from '../../fixtures/rng.js';

export interface Handles {
  root: Buffer;
  file: Buffer;
  dir: Buffer;
  exportPath: string;
}

const NFS = 100003, MOUNT = 100005, NLM = 100021, NSM = 100024;
const EDGE32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 1 << 20, (1 << 20) + 1, 65536, 4096];
const EDGE64 = [0n, 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 64n - 4096n];

type Args = (w: XdrWriter, r: Rng, h: Handles) => void;

const name = (r: Rng): string => ['a', 'f', 'file', 'dir', '.wh.x', 'x'.repeat(255), 'new' + (r() % 1000), '..', '.', ''][r() % 10]!;
const sattr = (w: XdrWriter, r: Rng): void => {
  w.bool(r() % 2 === 0); if (r() % 2) w.uint32(r() % 0o10000);
  w.bool(false); w.bool(false);
  w.bool(r() % 3 === 0); if (r() % 3 === 0) w.uint64(EDGE64[r() % EDGE64.length]!);
  w.uint32(r() % 3); w.uint32(r() % 3);
};
const fh = (r: Rng, h: Handles): Buffer => [h.root, h.file, h.dir][r() % 3]!;
const lock = (w: XdrWriter, r: Rng, h: Handles): void => {
  w.string('fuzzer').opaque(fh(r, h)).opaque(Buffer.from('owner')).int32(r() % 1000);
  w.uint64(EDGE64[r() % EDGE64.length]!).uint64(EDGE64[r() % EDGE64.length]!);
};

/** [program, version, procedure, arguments] of every procedure. */
export const SEEDS: [number, number, number, Args][] = [
  [NFS, 3, 0, () => undefined],
  [NFS, 3, 1, (w, r, h) => w.opaque(fh(r, h))],
  [NFS, 3, 2, (w, r, h) => { w.opaque(fh(r, h)); sattr(w, r); w.bool(false); }],
  [NFS, 3, 3, (w, r, h) => w.opaque(fh(r, h)).string(name(r))],
  [NFS, 3, 4, (w, r, h) => w.opaque(fh(r, h)).uint32(0x3f)],
  [NFS, 3, 5, (w, r, h) => w.opaque(fh(r, h))],
  [NFS, 3, 6, (w, r, h) => w.opaque(fh(r, h)).uint64(EDGE64[r() % EDGE64.length]!).uint32(EDGE32[r() % EDGE32.length]!)],
  [NFS, 3, 7, (w, r, h) => { const d = Buffer.alloc(r() % 5000, 7); w.opaque(fh(r, h)).uint64(EDGE64[r() % EDGE64.length]!).uint32(d.length).uint32(r() % 3).opaque(d); }],
  [NFS, 3, 8, (w, r, h) => { w.opaque(fh(r, h)).string(name(r)).uint32(r() % 3); if (r() % 2) sattr(w, r); else w.opaqueFixed(Buffer.alloc(8)); }],
  [NFS, 3, 9, (w, r, h) => { w.opaque(fh(r, h)).string(name(r)); sattr(w, r); }],
  [NFS, 3, 10, (w, r, h) => { w.opaque(fh(r, h)).string(name(r)); sattr(w, r); w.string('target'); }],
  [NFS, 3, 11, (w, r, h) => { w.opaque(fh(r, h)).string(name(r)).uint32(1 + (r() % 7)); sattr(w, r); w.uint32(r()).uint32(r()); }],
  [NFS, 3, 12, (w, r, h) => w.opaque(fh(r, h)).string(name(r))],
  [NFS, 3, 13, (w, r, h) => w.opaque(fh(r, h)).string(name(r))],
  [NFS, 3, 14, (w, r, h) => w.opaque(fh(r, h)).string(name(r)).opaque(fh(r, h)).string(name(r))],
  [NFS, 3, 15, (w, r, h) => w.opaque(fh(r, h)).opaque(fh(r, h)).string(name(r))],
  [NFS, 3, 16, (w, r, h) => w.opaque(fh(r, h)).uint64(EDGE64[r() % EDGE64.length]!).opaqueFixed(Buffer.alloc(8)).uint32(EDGE32[r() % EDGE32.length]!)],
  [NFS, 3, 17, (w, r, h) => w.opaque(fh(r, h)).uint64(EDGE64[r() % EDGE64.length]!).opaqueFixed(Buffer.alloc(8)).uint32(EDGE32[r() % EDGE32.length]!).uint32(EDGE32[r() % EDGE32.length]!)],
  [NFS, 3, 18, (w, r, h) => w.opaque(fh(r, h))],
  [NFS, 3, 19, (w, r, h) => w.opaque(fh(r, h))],
  [NFS, 3, 20, (w, r, h) => w.opaque(fh(r, h))],
  [NFS, 3, 21, (w, r, h) => w.opaque(fh(r, h)).uint64(EDGE64[r() % EDGE64.length]!).uint32(EDGE32[r() % EDGE32.length]!)],
  [MOUNT, 3, 0, () => undefined],
  [MOUNT, 3, 1, (w, _r, h) => w.string(h.exportPath)],
  [MOUNT, 3, 2, () => undefined],
  [MOUNT, 3, 3, (w, _r, h) => w.string(h.exportPath)],
  [MOUNT, 3, 4, () => undefined],
  [MOUNT, 3, 5, () => undefined],
  [NLM, 4, 0, () => undefined],
  [NLM, 4, 1, (w, r, h) => { w.opaque(Buffer.from('c')).bool(r() % 2 === 0); lock(w, r, h); }],
  [NLM, 4, 2, (w, r, h) => { w.opaque(Buffer.from('c')).bool(false).bool(r() % 2 === 0); lock(w, r, h); w.bool(false).int32(3); }],
  [NLM, 4, 3, (w, r, h) => { w.opaque(Buffer.from('c')).bool(false).bool(true); lock(w, r, h); }],
  [NLM, 4, 4, (w, r, h) => { w.opaque(Buffer.from('c')); lock(w, r, h); }],
  [NLM, 4, 20, (w, r, h) => { w.string('fuzzer').opaque(fh(r, h)).opaque(Buffer.from('o')).uint32(r() % 4).uint32(r() % 4); w.opaque(Buffer.from('c')).bool(false); }],
  [NLM, 4, 21, (w, r, h) => { w.string('fuzzer').opaque(fh(r, h)).opaque(Buffer.from('o')).uint32(r() % 4).uint32(r() % 4); w.opaque(Buffer.from('c')).bool(false); }],
  [NLM, 4, 23, (w, r) => w.string('fuzzer').int32(r())],
  [NSM, 1, 0, () => undefined],
  [NSM, 1, 1, (w) => w.string('fuzzer')],
  [NSM, 1, 6, (w, r) => w.string('fuzzer').int32(r()).opaqueFixed(Buffer.alloc(16))],
];

function cred(r: Rng): OpaqueAuth {
  switch (r() % 6) {
    case 0: return { flavor: auth_flavor.AUTH_NONE, body: Buffer.alloc(0) };
    case 1: return encodeAuthSys({ uid: 0, gid: 0, gids: Array.from({ length: 17 + (r() % 20) }, (_, i) => i), machinename: 'fuzzer' });
    case 2: return encodeAuthSys({ uid: r(), gid: r(), machinename: 'm'.repeat(256 + (r() % 100)) });
    default: return encodeAuthSys({ uid: r() % 2 ? 0 : 1000, gid: 0, machinename: 'fuzzer' });
  }
}

/** A valid call of seed `i`, then (most of the time) mutated. */
export function message(r: Rng, xid: number, h: Handles): Buffer {
  const [prog, vers, proc, args] = SEEDS[r() % SEEDS.length]!;
  const w = new XdrWriter(256);
  const k = r() % 10;
  // Wrong program, version or procedure now and then.
  encodeCallHeader(w, xid, k === 0 ? r() : prog, k === 1 ? r() % 8 : vers, k === 2 ? r() % 64 : proc, cred(r));
  // A broken call header closes a TCP connection (and so ends the batch): mutations land in
  // the arguments three times out of four, so that the procedures' decoders are what is fuzzed.
  const head = r() % 4 === 0 ? 4 : w.length;
  args(w, r, h);
  const b = Buffer.from(w.toBuffer());
  const at = (): number => head + (r() % Math.max(1, b.length - head));
  switch (r() % 5) {
    case 0: return b; // valid
    case 1: { // bit flips, past the xid (a flipped xid is still a call)
      for (let n = 1 + (r() % 8); n > 0; n--) b[Math.min(at(), b.length - 1)]! ^= 1 << (r() % 8);
      return b;
    }
    case 2: return b.subarray(0, at()); // truncated
    case 3: { // a length or count field set to an edge value
      const word = at() & ~3;
      if (word + 4 <= b.length) b.writeUInt32BE(EDGE32[r() % EDGE32.length]!, word);
      return b;
    }
    default: { // a 64-bit field (offset, size) above 2^53
      const word = at() & ~3;
      if (word + 8 <= b.length) b.writeBigUInt64BE(EDGE64[r() % EDGE64.length]!, word);
      return b;
    }
  }
}
