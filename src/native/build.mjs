// `npm install` / `npm ci` runs this (package.json "install"): builds the N-API addons of
// src/native (busy_poll.node, syscalls.node) with node-gyp against the headers of the node
// running it, which a distribution's node package ships under <prefix>/include/node (Debian:
// /usr), so no headers are downloaded. Without a compiler the server still runs (busy-poll.ts
// and vfs/xattr.ts have portable ways): this says so loudly and does not fail the install.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const prefix = dirname(dirname(process.execPath));
const nodedir = process.env.npm_config_nodedir ?? (existsSync(join(prefix, 'include/node/node_api.h')) ? prefix : undefined);
const npmCli = process.env.npm_execpath;
const gyp = [
  npmCli && join(dirname(npmCli), '../node_modules/node-gyp/bin/node-gyp.js'),
  join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
].find((p) => p && existsSync(p));

const problem = !gyp ? 'node-gyp not found (it comes with npm)' : !nodedir ? `no Node headers under ${prefix}/include/node (set npm_config_nodedir)` : undefined;
const r = problem ? undefined : spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`], { cwd: here, stdio: 'inherit' });
if (problem || r?.status !== 0) {
  process.stderr.write(`\n*** union-nfsd: the native addons were not built (${problem ?? `node-gyp exited ${r?.status}`}); ` +
    'the server falls back to portable busy polling, with more garbage collection and a longer latency tail, ' +
    'and reads the layers\' overlayfs xattrs with one getfattr walk of every layer at start ***\n\n');
}
