/**
 * The NLM v4 program (constants.ts has the procedure list): decodes a request, finds the file
 * its handle names as NFS does (export by handle, the caller admitted by the export's client
 * rules, squashed, the union this client sees), checks that a caller who takes a lock may
 * read the file, and asks the lock manager (lock-manager.ts).
 *
 * Rule: a file is named for locking by its union and its handle (which carries the export and
 * the stable file id), so a lock survives the file's copy-up and per-client unions never
 * share locks. Owners are keyed by the client's address, never by caller_name alone. Like
 * the NFS procedures, a request is answered in the turn it arrives when the client's union is
 * open (withFile). A `_MSG` request gets an empty reply
 * and its answer as the matching `_RES` call to the client's lock manager. GRANTED and the
 * `_RES` procedures are answers to a lock client; this server never waits for a lock, so it
 * answers GRANTED with NLM4_DENIED and ignores the `_RES` calls.
 * Nothing is logged per call at info level: every line here could be driven by a client.
 */
import { XdrWriter } from '@nfs-ts/xdr';
import type { Credential, Procedure, ProgramVersion, RpcCall } from '../rpc/types.js';
import type { UnionFs } from '../vfs/types.js';
import type { ExportTable } from '../exports/export-table.js';
import { plainAddress } from '../exports/client-rules.js';
import { squash } from '../exports/squash.js';
import { FsError } from '../errors/fs-error.js';
import { toNlm4Stat } from '../errors/nlm4stat.js';
import { ACCESS3_READ } from '../nfs3/constants.js';
import { NLM4_VERS, NLM_PROG, NLMPROC4, NLMPROC4_NAMES, nlm4_stats } from './constants.js';
import { ownerOf } from './lock-table.js';
import type { LockIntent, LockManager } from './lock-manager.js';
import {
  readCancelArgs, readLockArgs, readNotifyArgs, readShareArgs, readTestArgs, readUnlockArgs,
  writeRes, writeShareRes, writeTestRes, type Nlm4Lock,
} from './xdr.js';
import { sendRes, type CallbackOptions } from './callback.js';

/**
 * Answered from the duplicate request cache when retransmitted: a replayed UNLOCK could undo a
 * lock taken again since, a replayed CANCEL would answer DENIED for what it did cancel.
 * (A client re-sends a blocked LOCK with a new xid, so that is a new request, as it must be.)
 */
export const NLM4_NON_IDEMPOTENT: ReadonlySet<number> = new Set<number>([
  NLMPROC4.LOCK, NLMPROC4.CANCEL, NLMPROC4.UNLOCK, NLMPROC4.SHARE, NLMPROC4.UNSHARE, NLMPROC4.NM_LOCK,
]);

export interface NlmDeps {
  readonly exports: () => ExportTable;
  readonly manager: LockManager;
  /** How `_RES` answers find the client (tests move its portmapper). */
  readonly callbacks?: CallbackOptions;
}

/** A procedure's body: synchronous when it can be (see withFile). */
type Answer = (call: RpcCall, reply: XdrWriter) => void | Promise<void>;

export function nlm4Program(d: NlmDeps): ProgramVersion {
  /** A number per union, for file keys (a per-client export has a union per client). */
  const unionIds = new WeakMap<UnionFs, number>();
  let nextUnion = 1;

  /**
   * The lock key of the file `fh` names, for this caller; throws errno errors. A request that
   * takes something (TEST, LOCK, SHARE) needs a live handle and read access; one that only
   * gives up (UNLOCK, CANCEL, UNSHARE) needs neither, so a lock on a file removed since, or
   * one the caller can no longer read, can still be let go. The key is the handle itself: it
   * carries the export and the union's stable file id and is the same for an object forever,
   * so a lock survives the file's copy-up.
   */
  const fileIn = (fs: UnionFs, fh: Buffer, cred: Credential, taking: boolean): string => {
    if (taking) {
      const id = fs.resolve(fh);
      if ((fs.access(id, ACCESS3_READ, cred) & ACCESS3_READ) === 0) throw new FsError('EACCES', 'locking needs read access');
    }
    let u = unionIds.get(fs);
    if (u === undefined) unionIds.set(fs, u = nextUnion++);
    return `${u}/${fh.toString('hex')}`;
  };

  /**
   * Runs `answer` with the key of the file `fh` names, or `fail` with why there is none (or
   * why `answer` threw). Synchronous when the caller's union is open, as it is after MNT, so
   * the reply leaves in the same turn (rpc/dispatcher.ts); a promise otherwise.
   */
  const withFile = (call: RpcCall, fh: Buffer, taking: boolean, answer: (file: string) => void, fail: (err: unknown) => void): void | Promise<void> => {
    const settle = (fs: UnionFs, cred: Credential): void => {
      try {
        answer(fileIn(fs, fh, cred, taking));
      } catch (err) {
        fail(err);
      }
    };
    try {
      const t = d.exports();
      const exp = t.route(fh);
      const cred = squash(t.admit(exp, call.peer), call.cred);
      const fs = exp.unions.peek(call.peer.address);
      if (fs === undefined) return exp.unions.open(call.peer.address).then((opened) => settle(opened, cred), (err: unknown) => { fail(err); });
      settle(fs, cred);
    } catch (err) {
      fail(err);
    }
    return undefined;
  };

  const intent = (call: RpcCall, file: string, exclusive: boolean, l: Nlm4Lock): LockIntent =>
    ({ file, owner: ownerOf(plainAddress(call.peer.address), l), exclusive, start: l.start, end: l.end });

  const local = (call: RpcCall): string | undefined => (call.peer.local === undefined ? undefined : plainAddress(call.peer.local));

  const test: Answer = (call, reply) => {
    const a = readTestArgs(call.args);
    call.args.done();
    return withFile(call, a.lock.fh, true, (file) => {
      const { stat, holder: h } = d.manager.test(intent(call, file, a.exclusive, a.lock));
      writeTestRes(reply, a.cookie, stat, h && { exclusive: h.exclusive, svid: h.owner.svid, oh: h.owner.oh, start: h.start, end: h.end });
    }, (err) => writeTestRes(reply, a.cookie, toNlm4Stat(err, 'NLM TEST', call)));
  };

  const lock = (monitored: boolean): Answer => (call, reply) => {
    const a = readLockArgs(call.args);
    call.args.done();
    return withFile(call, a.lock.fh, true,
      (file) => writeRes(reply, a.cookie, d.manager.lock(intent(call, file, a.exclusive, a.lock), { ...a, monitored, local: local(call) })),
      (err) => writeRes(reply, a.cookie, toNlm4Stat(err, 'NLM LOCK', call)));
  };

  const cancel: Answer = (call, reply) => {
    const a = readCancelArgs(call.args);
    call.args.done();
    return withFile(call, a.lock.fh, false,
      (file) => writeRes(reply, a.cookie, d.manager.cancel(intent(call, file, a.exclusive, a.lock))),
      (err) => writeRes(reply, a.cookie, toNlm4Stat(err, 'NLM CANCEL', call)));
  };

  const unlock: Answer = (call, reply) => {
    const a = readUnlockArgs(call.args);
    call.args.done();
    return withFile(call, a.lock.fh, false, (file) => {
      const i = intent(call, file, false, a.lock);
      writeRes(reply, a.cookie, d.manager.unlock(i.file, i.owner, i.start, i.end));
    }, (err) => writeRes(reply, a.cookie, toNlm4Stat(err, 'NLM UNLOCK', call)));
  };

  const granted: Answer = (call, reply) => {
    const a = readTestArgs(call.args);
    call.args.done();
    writeRes(reply, a.cookie, nlm4_stats.NLM4_DENIED);
  };

  const share = (on: boolean): Answer => (call, reply) => {
    const a = readShareArgs(call.args);
    call.args.done();
    const owner = ownerOf(plainAddress(call.peer.address), { callerName: a.share.callerName, svid: 0, oh: a.share.oh });
    return withFile(call, a.share.fh, on, (file) => {
      writeShareRes(reply, a.cookie, on ? d.manager.share(file, owner, a.share.mode, a.share.access, a.reclaim, local(call)) : d.manager.unshare(file, owner));
    }, (err) => writeShareRes(reply, a.cookie, toNlm4Stat(err, on ? 'NLM SHARE' : 'NLM UNSHARE', call)));
  };

  const freeAll = (call: RpcCall): void => {
    const a = readNotifyArgs(call.args);
    call.args.done();
    d.manager.freeClient(plainAddress(call.peer.address), { caller: a.name });
  };

  /**
   * The `_MSG` form of a procedure: its answer goes back as the `_RES` call `resProc`, and only
   * to a host some export admits: a forged UDP source must not make us send to a stranger.
   */
  const message = (p: Answer, resProc: number): Procedure => (call) => {
    const body = new XdrWriter(256);
    const send = (): void => {
      if (!admittedAnywhere(call)) return;
      const bytes = body.toBuffer();
      sendRes(plainAddress(call.peer.address), local(call), resProc, (w) => w.opaqueFixed(bytes), d.callbacks);
    };
    const pending = p(call, body);
    return pending === undefined ? send() : pending.then(send);
  };

  const admittedAnywhere = (call: RpcCall): boolean => {
    const t = d.exports();
    return t.exports.some((e) => {
      try {
        t.admit(e, call.peer);
        return true;
      } catch {
        return false;
      }
    });
  };

  const ignored: Procedure = () => undefined;
  const procedures: (Procedure | undefined)[] = [];
  procedures[NLMPROC4.NULL] = (call) => call.args.done();
  procedures[NLMPROC4.TEST] = test;
  procedures[NLMPROC4.LOCK] = lock(true);
  procedures[NLMPROC4.CANCEL] = cancel;
  procedures[NLMPROC4.UNLOCK] = unlock;
  procedures[NLMPROC4.GRANTED] = granted;
  procedures[NLMPROC4.TEST_MSG] = message(test, NLMPROC4.TEST_RES);
  procedures[NLMPROC4.LOCK_MSG] = message(lock(true), NLMPROC4.LOCK_RES);
  procedures[NLMPROC4.CANCEL_MSG] = message(cancel, NLMPROC4.CANCEL_RES);
  procedures[NLMPROC4.UNLOCK_MSG] = message(unlock, NLMPROC4.UNLOCK_RES);
  procedures[NLMPROC4.GRANTED_MSG] = message(granted, NLMPROC4.GRANTED_RES);
  for (const p of [NLMPROC4.TEST_RES, NLMPROC4.LOCK_RES, NLMPROC4.CANCEL_RES, NLMPROC4.UNLOCK_RES, NLMPROC4.GRANTED_RES]) procedures[p] = ignored;
  procedures[NLMPROC4.SHARE] = share(true);
  procedures[NLMPROC4.UNSHARE] = share(false);
  procedures[NLMPROC4.NM_LOCK] = lock(false);
  procedures[NLMPROC4.FREE_ALL] = freeAll;
  return { prog: NLM_PROG, vers: NLM4_VERS, name: 'nlockmgr', procedures, procedureNames: NLMPROC4_NAMES, nonIdempotent: NLM4_NON_IDEMPOTENT };
}
