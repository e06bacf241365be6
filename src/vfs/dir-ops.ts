import { FsError } from '../errors/fs-error.js';
import type { Node } from './node.js';
import type { Union } from './union.js';
import type { CreateHow, Cred, FileType, NodeId, SetAttr, StableHow } from './types.js';

/* eslint-disable @typescript-eslint/no-unused-vars */
export async function setattr(_u: Union, _n: Node, _a: SetAttr, _c: Cred): Promise<void> { throw new FsError('EROFS'); }
export async function write(_u: Union, _n: Node, _o: number, _d: Buffer, _s: StableHow, _c: Cred): Promise<StableHow> { throw new FsError('EROFS'); }
export async function create(_u: Union, _d: Node, _n: string, _h: CreateHow, _c: Cred): Promise<NodeId> { throw new FsError('EROFS'); }
export async function mknodAny(_u: Union, _d: Node, _n: string, _t: FileType, _a: SetAttr, _c: Cred, _x: { target: Buffer | undefined; rdev: { major: number; minor: number } | undefined }): Promise<NodeId> { throw new FsError('EROFS'); }
export async function remove(_u: Union, _d: Node, _n: string, _dir: boolean, _c: Cred): Promise<void> { throw new FsError('EROFS'); }
export async function rename(_u: Union, _d: Node, _n: string, _d2: Node, _n2: string, _c: Cred): Promise<void> { throw new FsError('EROFS'); }
export async function link(_u: Union, _x: Node, _d: Node, _n: string, _c: Cred): Promise<void> { throw new FsError('EROFS'); }
