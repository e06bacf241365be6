import * as fs from 'node:fs';
import { FsError } from '../errors/fs-error.js';
import type { Node } from './node.js';
import type { Union } from './union.js';

export function prepareWorkdir(workdir: string): string {
  const tmp = workdir + '/union-nfsd/tmp';
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true, mode: 0o700 });
  return Buffer.from(tmp, 'utf8').toString('latin1');
}

export async function copyUp(_u: Union, _n: Node, _o?: { noData?: boolean }): Promise<void> {
  throw new FsError('EROFS');
}
