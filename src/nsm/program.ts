/**
 * NSM, the status monitor (program 100024 v1, XNFS chapter 11), as far as a lock server needs
 * it: SM_NOTIFY from a client that rebooted frees that client's locks, and SM_STAT tells our
 * state. SM_MON, SM_UNMON, SM_UNMON_ALL and SM_SIMU_CRASH are how a host's own lockd talks to
 * its statd; we are nobody's statd, so they are PROC_UNAVAIL (our own monitoring of clients is
 * monitor.ts).
 *
 *   struct sm_name { string mon_name<SM_MAXSTRLEN>; };
 *   struct sm_stat_res { sm_res res_stat; int state; };
 *   struct stat_chge { string mon_name<SM_MAXSTRLEN>; int state; };
 *   program SM_PROG { version SM_VERS {
 *     void NULL(void) = 0;  sm_stat_res SM_STAT(sm_name) = 1;  ...  void SM_NOTIFY(stat_chge) = 6;
 *   } = 1; } = 100024;
 *
 * Rule: a notification frees the locks of the client at the address it comes from, never of
 * other addresses that used the same name (cloned VMs share host names), and only when its
 * state differs from the one that client sent with its last LOCK (a late duplicate of an old
 * notification must not free new locks).
 */
import type { ProgramVersion, RpcCall } from '../rpc/types.js';
import type { XdrWriter } from '@nfs-ts/xdr';
import { plainAddress } from '../exports/client-rules.js';
import { child } from '../log.js';

const log = child('nsm');

export const SM_PROG = 100024;
export const SM_VERS = 1;
export const SM_MAXSTRLEN = 1024;
export const SMPROC = { NULL: 0, STAT: 1, MON: 2, UNMON: 3, UNMON_ALL: 4, SIMU_CRASH: 5, NOTIFY: 6 } as const;
export const sm_res = { stat_succ: 0, stat_fail: 1 } as const;

export interface NsmDeps {
  /** Our NSM state number. */
  state(): number;
  /** Frees the locks of the client at `address` that rebooted into `state`; how many. */
  rebooted(address: string, name: string, state: number): number;
}

export function createNsmProgram(d: NsmDeps): ProgramVersion {
  const stat = (call: RpcCall, reply: XdrWriter): void => {
    call.args.string(SM_MAXSTRLEN);
    call.args.done();
    // stat_fail: we monitor no host on anyone's behalf; the state is ours.
    reply.enum(sm_res.stat_fail).int32(d.state());
  };
  const notify = (call: RpcCall): void => {
    const name = call.args.string(SM_MAXSTRLEN).toString('latin1');
    const state = call.args.int32();
    call.args.done();
    const address = plainAddress(call.peer.address);
    const freed = d.rebooted(address, name, state);
    if (freed > 0) log.info(`${address} (${name}) rebooted (state ${state}): freed its ${freed} locks`, { client: address });
  };
  return {
    prog: SM_PROG,
    vers: SM_VERS,
    name: 'status',
    procedures: [(call) => call.args.done(), stat, undefined, undefined, undefined, undefined, notify],
    procedureNames: ['null', 'stat', 'mon', 'unmon', 'unmon_all', 'simu_crash', 'notify'],
  };
}
