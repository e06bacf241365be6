/**
 * sattr3 and sattrguard3 (RFC 1813 §2.6, §3.3.2).
 *
 *   enum time_how { DONT_CHANGE = 0, SET_TO_SERVER_TIME = 1, SET_TO_CLIENT_TIME = 2 };
 *   union set_mode3 switch (bool set_it) { case TRUE: mode3 mode; default: void; };
 *   union set_uid3  switch (bool set_it) { case TRUE: uid3 uid;   default: void; };
 *   union set_gid3  switch (bool set_it) { case TRUE: gid3 gid;   default: void; };
 *   union set_size3 switch (bool set_it) { case TRUE: size3 size; default: void; };
 *   union set_atime switch (time_how set_it) {
 *   case SET_TO_CLIENT_TIME: nfstime3 atime;  default: void;
 *   };
 *   union set_mtime switch (time_how set_it) {
 *   case SET_TO_CLIENT_TIME: nfstime3 mtime;  default: void;
 *   };
 *   struct sattr3 {
 *     set_mode3 mode; set_uid3 uid; set_gid3 gid; set_size3 size; set_atime atime; set_mtime mtime;
 *   };
 *   union sattrguard3 switch (bool check) { case TRUE: nfstime3 obj_ctime; case FALSE: void; };
 *
 * A time_how outside the enum is not valid XDR: XdrError, so GARBAGE_ARGS.
 */
import { XdrError, type XdrReader } from '@nfs-ts/xdr';
import type { SetAttr, SetTime, Time } from '../../vfs/types.js';
import { DONT_CHANGE, SET_TO_CLIENT_TIME, SET_TO_SERVER_TIME } from '../constants.js';
import { readOffset3 } from './offset.js';

const SERVER_TIME: SetTime = Object.freeze({ how: 'server' });

export function readNfstime3(r: XdrReader): Time {
  const sec = r.uint32();
  const nsec = r.uint32();
  return { sec, nsec };
}

function readSetTime(r: XdrReader): SetTime | undefined {
  const how = r.enum();
  switch (how) {
    case DONT_CHANGE: return undefined;
    case SET_TO_SERVER_TIME: return SERVER_TIME;
    case SET_TO_CLIENT_TIME: return { how: 'client', time: readNfstime3(r) };
    default: throw new XdrError(`time_how out of range: ${how}`);
  }
}

/** Only the fields the client set are present on the result. */
export function readSattr3(r: XdrReader): SetAttr {
  const out: { -readonly [K in keyof SetAttr]: SetAttr[K] } = {};
  if (r.bool()) out.mode = r.uint32() & 0o7777;
  if (r.bool()) out.uid = r.uint32();
  if (r.bool()) out.gid = r.uint32();
  if (r.bool()) out.size = readOffset3(r);
  const atime = readSetTime(r);
  if (atime !== undefined) out.atime = atime;
  const mtime = readSetTime(r);
  if (mtime !== undefined) out.mtime = mtime;
  return out;
}

/** sattrguard3: the ctime the client expects, or undefined for no guard. */
export function readSattrguard3(r: XdrReader): Time | undefined {
  return r.bool() ? readNfstime3(r) : undefined;
}
