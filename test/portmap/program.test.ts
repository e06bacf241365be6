// Portmapper v2 procedures through the dispatcher: SET/UNSET from loopback only, GETPORT, DUMP.
import test from 'ava';
import { XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { AUTH_NONE_CRED } from '../../src/rpc/auth.js';
import { Dispatcher } from '../../src/rpc/dispatcher.js';
import { accept_stat, decodeReplyHeader, encodeCallHeader } from '../../src/rpc/message.js';
import type { Peer } from '../../src/rpc/types.js';
import { createPortmapProgram, IPPROTO_TCP, IPPROTO_UDP, PMAP_PROG, PMAPPROC, PortmapRegistry, readMapping, writeMapping, type Mapping } from '../../src/portmap/program.js';
import { replyBytes } from '../fixtures/rpc.js';

const local: Peer = { address: '127.0.0.1', port: 900, transport: 'udp' };
const remote: Peer = { address: '192.0.2.7', port: 900, transport: 'udp' };
const NFS_TCP: Mapping = { prog: 100003, vers: 3, prot: IPPROTO_TCP, port: 2049 };

async function pmap(d: Dispatcher, proc: number, m: Mapping | undefined, peer = local): Promise<XdrReader> {
  const w = encodeCallHeader(new XdrWriter(), 9, PMAP_PROG, 2, proc, AUTH_NONE_CRED);
  if (m) writeMapping(w, m);
  const r = new XdrReader(replyBytes(await d.dispatch(w.toBuffer(), peer)));
  const h = decodeReplyHeader(r);
  if (h.kind !== 'accepted' || h.stat !== accept_stat.SUCCESS) throw new Error(JSON.stringify(h));
  return r;
}

test('SET, GETPORT, DUMP, UNSET', async (t) => {
  const d = new Dispatcher().register(createPortmapProgram(new PortmapRegistry()));
  t.true((await pmap(d, PMAPPROC.SET, NFS_TCP)).bool());
  t.false((await pmap(d, PMAPPROC.SET, { ...NFS_TCP, port: 1 })).bool(), 'already registered');
  t.true((await pmap(d, PMAPPROC.SET, { ...NFS_TCP, prot: IPPROTO_UDP })).bool());
  t.is((await pmap(d, PMAPPROC.GETPORT, { ...NFS_TCP, port: 0 })).uint32(), 2049);
  t.is((await pmap(d, PMAPPROC.GETPORT, { ...NFS_TCP, vers: 4, port: 0 })).uint32(), 0);
  const dump = await pmap(d, PMAPPROC.DUMP, undefined);
  const listed = [];
  while (dump.bool()) listed.push(readMapping(dump));
  dump.done();
  t.deepEqual(listed, [NFS_TCP, { ...NFS_TCP, prot: IPPROTO_UDP }]);
  t.true((await pmap(d, PMAPPROC.UNSET, { ...NFS_TCP, prot: 0, port: 0 })).bool());
  t.is((await pmap(d, PMAPPROC.GETPORT, NFS_TCP)).uint32(), 0);
  t.false((await pmap(d, PMAPPROC.UNSET, NFS_TCP)).bool());
});

test('SET and UNSET from a remote address are refused', async (t) => {
  const registry = new PortmapRegistry();
  const d = new Dispatcher().register(createPortmapProgram(registry));
  t.false((await pmap(d, PMAPPROC.SET, NFS_TCP, remote)).bool());
  registry.set(NFS_TCP);
  t.false((await pmap(d, PMAPPROC.UNSET, NFS_TCP, remote)).bool());
  t.is((await pmap(d, PMAPPROC.GETPORT, NFS_TCP, remote)).uint32(), 2049, 'GETPORT is for everyone');
});

test('the registry is bounded', (t) => {
  const r = new PortmapRegistry(2);
  t.true(r.set({ ...NFS_TCP, vers: 1 }));
  t.true(r.set({ ...NFS_TCP, vers: 2 }));
  t.false(r.set({ ...NFS_TCP, vers: 3 }));
});

test('CALLIT is PROC_UNAVAIL; versions 3 and 4 (rpcbind) get PROG_MISMATCH(2,2)', async (t) => {
  const d = new Dispatcher().register(createPortmapProgram(new PortmapRegistry()));
  const ask = async (vers: number, proc: number) =>
    decodeReplyHeader(new XdrReader(replyBytes(await d.dispatch(encodeCallHeader(new XdrWriter(), 1, PMAP_PROG, vers, proc, AUTH_NONE_CRED).toBuffer(), local))));
  t.like(await ask(2, PMAPPROC.CALLIT), { stat: accept_stat.PROC_UNAVAIL });
  t.like(await ask(4, 3), { stat: accept_stat.PROG_MISMATCH, mismatch: { low: 2, high: 2 } });
});
