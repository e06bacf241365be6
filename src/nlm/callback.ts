/**
 * Calls from the lock manager to a client's lock manager: GRANTED for a blocked lock that is
 * now granted, and the `_RES` answer to each `_MSG` request. The client's lockd is found
 * through the client's portmapper (GETPORT 100021 v4, UDP) and the call is sent from the
 * server address the client used: the Linux client matches a GRANTED by server address,
 * file handle, svid and range (fs/lockd/clntlock.c nlmclnt_grant), never by cookie.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import { child } from '../log.js';
import { callUdp } from '../rpc/client.js';
import { getPort } from '../portmap/client.js';
import { NLM4_VERS, NLM_PROG, NLMPROC4, nlm4_stats } from './constants.js';
import { writeTestArgs } from './xdr.js';
import type { Waiter } from './lock-manager.js';

const log = child('nlm');

export interface CallbackOptions {
  /** The client's portmapper port; default 111 (tests move it). */
  readonly pmapPort?: number;
}

async function lockdPort(client: string, local: string | undefined, o: CallbackOptions): Promise<number> {
  const port = await getPort(client, NLM_PROG, NLM4_VERS, { ...(local !== undefined && { localAddress: local }), ...(o.pmapPort !== undefined && { port: o.pmapPort }) });
  if (port === 0) throw new Error('no NLM v4 registered with its portmapper');
  return port;
}

/** NLMPROC4_GRANTED to the waiter's client; whether it took the lock. */
export async function sendGranted(w: Waiter, o: CallbackOptions = {}): Promise<boolean> {
  const client = w.owner.client;
  const port = await lockdPort(client, w.local, o);
  const r = await callUdp({
    host: client, port, prog: NLM_PROG, vers: NLM4_VERS, proc: NLMPROC4.GRANTED,
    ...(w.local !== undefined && { localAddress: w.local }),
    args: (a) => writeTestArgs(a, { cookie: w.cookie, exclusive: w.exclusive, lock: w.lock }),
  });
  r.opaque(1024);
  return r.enum() === nlm4_stats.NLM4_GRANTED;
}

/** Sends a `_MSG` request's answer as the matching `_RES` call; failures are only logged. */
export function sendRes(client: string, local: string | undefined, proc: number, body: (w: XdrWriter) => void, o: CallbackOptions = {}): void {
  lockdPort(client, local, o)
    .then((port) => callUdp({ host: client, port, prog: NLM_PROG, vers: NLM4_VERS, proc, args: body, attempts: 1, ...(local !== undefined && { localAddress: local }) }))
    .catch((err: unknown) => {
      if (log.isDebugEnabled()) log.debug(`NLM _RES ${proc} to ${client}: ${(err as Error).message}`, { client });
    });
}
