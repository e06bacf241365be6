/**
 * A scripted lock client for tests: NLM v4 and SM_NOTIFY calls by hand over RpcClient (file
 * handles come from an NfsView over the same connection, `NfsView.mount(client.rpc)`). Each
 * call resolves to the nlm4_stats number (and the holder, for TEST).
 */
import type { XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { RpcClient, type RpcClientOptions } from './rpc-client.js';
import { NLM4_VERS, NLM_PROG, NLMPROC4 } from '../../src/nlm/constants.js';
import { writeLock, END_OF_FILE, type Nlm4Lock } from '../../src/nlm/xdr.js';
import { SM_PROG, SM_VERS, SMPROC } from '../../src/nsm/program.js';

export interface LockSpec {
  fh: Buffer;
  /** Default 'test-host'. */
  caller?: string;
  svid?: number;
  /** Default `svid@caller`, as the Linux client makes it. */
  oh?: Buffer;
  start?: bigint;
  /** 0 = to end of file (the default). */
  len?: bigint;
}

export interface Holder { exclusive: boolean; svid: number; oh: Buffer; start: bigint; len: bigint }

function lockOf(s: LockSpec): Nlm4Lock {
  const caller = s.caller ?? 'test-host';
  const svid = s.svid ?? 1;
  const start = s.start ?? 0n;
  const len = s.len ?? 0n;
  return { callerName: caller, fh: s.fh, oh: s.oh ?? Buffer.from(`${svid}@${caller}`), svid, start, end: len === 0n ? END_OF_FILE : start + len };
}

type LockArgs = LockSpec & { exclusive?: boolean; block?: boolean; reclaim?: boolean; state?: number };

function writeLockArgs(w: XdrWriter, s: LockArgs): void {
  writeLock(w.opaque(cookie()).bool(s.block ?? false).bool(s.exclusive ?? true), lockOf(s)).bool(s.reclaim ?? false).int32(s.state ?? 1);
}

let cookies = 1;
const cookie = (): Buffer => Buffer.from(`c${cookies++}`);

function res(r: XdrReader): number {
  r.opaque(1024);
  return r.enum();
}

export class NlmClient {
  private constructor(readonly rpc: RpcClient) {}

  static async connect(transport: 'tcp' | 'udp', host: string, port: number, o: RpcClientOptions = {}): Promise<NlmClient> {
    return new NlmClient(await RpcClient.connect(transport, host, port, o));
  }

  /** TEST, or another procedure that takes nlm4_testargs (GRANTED). */
  async test(s: LockSpec & { exclusive?: boolean; proc?: number }): Promise<{ stat: number; holder?: Holder }> {
    const r = await this.rpc.ok(NLM_PROG, NLM4_VERS, s.proc ?? NLMPROC4.TEST, (w) => writeLock(w.opaque(cookie()).bool(s.exclusive ?? true), lockOf(s)));
    const stat = res(r);
    if (stat !== 1 || (s.proc ?? NLMPROC4.TEST) !== NLMPROC4.TEST) return { stat };
    return { stat, holder: { exclusive: r.bool(), svid: r.int32(), oh: Buffer.from(r.opaque(1024)), start: r.uint64(), len: r.uint64() } };
  }

  async lock(s: LockArgs & { proc?: number }): Promise<number> {
    return res(await this.rpc.ok(NLM_PROG, NLM4_VERS, s.proc ?? NLMPROC4.LOCK, (w) => writeLockArgs(w, s)));
  }

  /** LOCK_MSG: the reply is empty; the answer comes as a LOCK_RES call to our lock manager. */
  async lockMessage(s: LockArgs): Promise<void> {
    await this.rpc.ok(NLM_PROG, NLM4_VERS, NLMPROC4.LOCK_MSG, (w) => writeLockArgs(w, s));
  }

  async cancel(s: LockSpec & { exclusive?: boolean; block?: boolean }): Promise<number> {
    return res(await this.rpc.ok(NLM_PROG, NLM4_VERS, NLMPROC4.CANCEL, (w) => writeLock(w.opaque(cookie()).bool(s.block ?? true).bool(s.exclusive ?? true), lockOf(s))));
  }

  async unlock(s: LockSpec): Promise<number> {
    return res(await this.rpc.ok(NLM_PROG, NLM4_VERS, NLMPROC4.UNLOCK, (w) => writeLock(w.opaque(cookie()), lockOf(s))));
  }

  async share(s: { fh: Buffer; caller?: string; oh?: Buffer; mode: number; access: number; reclaim?: boolean }, proc: number = NLMPROC4.SHARE): Promise<number> {
    const r = await this.rpc.ok(NLM_PROG, NLM4_VERS, proc, (w) => {
      w.opaque(cookie()).string(s.caller ?? 'test-host').opaque(s.fh).opaque(s.oh ?? Buffer.from('share-owner')).enum(s.mode).enum(s.access).bool(s.reclaim ?? false);
    });
    const stat = res(r);
    r.int32();
    return stat;
  }

  async freeAll(name: string, state = 0): Promise<void> {
    await this.rpc.ok(NLM_PROG, NLM4_VERS, NLMPROC4.FREE_ALL, (w) => w.string(name).int32(state));
  }

  /** SM_NOTIFY to the server's status monitor: "I, `name`, rebooted into `state`". */
  async notify(name: string, state: number): Promise<void> {
    await this.rpc.ok(SM_PROG, SM_VERS, SMPROC.NOTIFY, (w) => w.string(name).int32(state));
  }

  close(): void {
    this.rpc.close();
  }
}
