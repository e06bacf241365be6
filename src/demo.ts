/**
 * The demo union served when union-nfsd starts with no layers: three small lower layers that
 * show each union rule (a file overridden from above, an OCI whiteout, an opaque directory, a
 * symlink) plus an upper layer that keeps the user's changes between runs. The lowers are
 * rebuilt on every start so they always match this file; the upper layer is left alone.
 *
 *   base     etc/hostname etc/motd usr/share/doc/union-nfsd/README bin -> usr/bin
 *            data/old-results.csv cache/{a,b}.tmp
 *   dataset  data/measurements.csv etc/motd (hides base's)  .wh. whiteout of data/old-results.csv
 *   patch    cache/ opaque (base's cache/*.tmp hidden) with cache/fresh.txt
 */
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExportConfig } from './config.js';
import { stateHome } from './state-dir.js';

type Tree = Record<string, string | { symlink: string }>;

const LAYERS: Record<'patch' | 'dataset' | 'base', Tree> = {
  base: {
    'etc/hostname': 'union-demo\n',
    'etc/motd': 'Welcome to the base layer.\n',
    'usr/bin/hello': '#!/bin/sh\necho hello from the base layer\n',
    'usr/share/doc/union-nfsd/README': 'This file lives in the bottom lower layer.\n',
    bin: { symlink: 'usr/bin' },
    'data/old-results.csv': 'run,value\n1,0.5\n',
    'cache/a.tmp': 'stale\n',
    'cache/b.tmp': 'stale\n',
  },
  dataset: {
    'etc/motd': 'Welcome to union-nfsd: this motd comes from the dataset layer and hides the base one.\n',
    'data/measurements.csv': 'run,value\n1,0.51\n2,0.49\n3,0.50\n',
    'data/.wh.old-results.csv': '',
  },
  patch: {
    'cache/.wh..wh..opq': '',
    'cache/fresh.txt': 'The patch layer made cache/ opaque: base\'s *.tmp files are hidden.\n',
  },
};

function writeTree(root: string, tree: Tree): void {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  for (const [path, content] of Object.entries(tree)) {
    const full = join(root, path);
    mkdirSync(join(full, '..'), { recursive: true });
    if (typeof content === 'string') writeFileSync(full, content, { mode: path.startsWith('usr/bin/') ? 0o755 : 0o644 });
    else symlinkSync(content.symlink, full);
  }
}

/** Creates (or refreshes) the demo layers and returns the layer options to serve them. */
export function prepareDemo(dir = join(stateHome(), 'demo')): Pick<ExportConfig, 'lowers' | 'upper' | 'workdir'> {
  const lowers = (['patch', 'dataset', 'base'] as const).map((name) => {
    const root = join(dir, 'lower', name);
    writeTree(root, LAYERS[name]);
    return root;
  });
  const upper = join(dir, 'upper');
  const workdir = join(dir, 'work');
  mkdirSync(upper, { recursive: true });
  mkdirSync(workdir, { recursive: true });
  return { lowers, upper, workdir };
}
