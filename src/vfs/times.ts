/**
 * Setting file times: to the nanosecond a client sent (SETATTR, CREATE) or a lower file has
 * (copy-up), never following a symlink.
 *
 * How: utimensat(2) from the syscalls addon, which leaves a time not asked for as it is.
 * Without the addon, fs.lutimesSync, which takes seconds as a double (a time rounds to about
 * the microsecond) and both times, so the one not asked for is read first (lstat).
 * Example: mtime 1000.200000000 reads back .200000000, not .199999000.
 */
import * as fs from 'node:fs';
import type { SetTime, Time } from './types.js';
import { sys } from './syscalls.js';

const OMIT = -1, NOW = -2;

/** Set atime and/or mtime of p. */
export function setTimes(p: Buffer, atime: SetTime | undefined, mtime: SetTime | undefined): void {
  if (atime === undefined && mtime === undefined) return;
  if (sys !== undefined) {
    const [as, an] = parts(atime), [ms, mn] = parts(mtime);
    sys.lutimens(p, as, an, ms, mn);
    return;
  }
  const now = Date.now() / 1000;
  const st = atime === undefined || mtime === undefined ? fs.lstatSync(p, { bigint: true }) : undefined;
  const seconds = (t: SetTime | undefined, ns: bigint | undefined): number =>
    t === undefined ? Number(ns) / 1e9 : t.how === 'server' ? now : t.time.sec + t.time.nsec / 1e9;
  fs.lutimesSync(p, seconds(atime, st?.atimeNs), seconds(mtime, st?.mtimeNs));
}

/** Both times exactly (a copy-up keeps the lower file's). */
export function copyTimes(p: Buffer, atime: Time, mtime: Time): void {
  setTimes(p, { how: 'client', time: atime }, { how: 'client', time: mtime });
}

/** A bigint nanosecond stat time as a Time. */
export function timeOfNs(ns: bigint): Time {
  return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
}

function parts(t: SetTime | undefined): [sec: number, nsec: number] {
  if (t === undefined) return [0, OMIT];
  if (t.how === 'server') return [0, NOW];
  return [t.time.sec, t.time.nsec];
}
