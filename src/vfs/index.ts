/**
 * The union VFS: `openUnion` builds a UnionFs over lower layers and an optional upper layer.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { FsError } from '../errors/fs-error.js';
import type { UnionFs } from './types.js';
import { Layers } from './layers.js';
import { IdentityStore } from './store/index.js';
import { Union, type UnionOptions } from './union.js';
import { prepareWorkdir } from './copy-up.js';
import { stateHome } from '../state-dir.js';

export type { UnionOptions } from './union.js';
export type { WhiteoutFormat } from './whiteout.js';
export { HANDLE_LEN } from './identity.js';
export { vfsCounters, type UnionUsage } from './stats.js';
export { PROCESS_FDS } from './fd-cache.js';
export * from './types.js';

/** The state directory for a set of options (see store.ts for its contents). */
export function stateDirFor(o: Pick<UnionOptions, 'lowers' | 'upper' | 'workdir' | 'state'>): string {
  if (o.state !== undefined) return path.resolve(o.state);
  if (o.workdir !== undefined) return path.join(path.resolve(o.workdir), 'union-nfsd');
  const h = createHash('sha256').update(JSON.stringify([o.lowers.map((l) => path.resolve(l)), o.upper ? path.resolve(o.upper) : null])).digest('hex').slice(0, 16);
  return path.join(stateHome(), h);
}

export async function openUnion(o: UnionOptions): Promise<UnionFs & Union> {
  if ((o.upper === undefined) !== (o.workdir === undefined)) {
    throw new FsError('EINVAL', 'upper and workdir go together');
  }
  const layers = new Layers(o.lowers, o.upper, { upper: o.whiteoutFormat, ...(o.lowerFormats !== undefined && { lowers: o.lowerFormats }) });
  try {
    let workdir: string | undefined;
    if (o.workdir !== undefined) {
      workdir = fs.realpathSync(path.resolve(o.workdir));
      if (fs.statSync(workdir).dev !== layers.upper.dev) throw new FsError('EXDEV', 'upper and workdir must be on one filesystem');
    }
    const store = new IdentityStore(stateDirFor(o), o.identityCacheRecords);
    store.open();
    const u = new Union(layers, store, o.whiteoutFormat, workdir, o);
    if (workdir !== undefined) {
      u.useWorkdir(prepareWorkdir(workdir));
    }
    await u.init();
    return u;
  } catch (e) {
    layers.release();
    throw e;
  }
}
