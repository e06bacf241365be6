// Call header decoding and reply header encoding against annotated hex fixtures.
import test from 'ava';
import { XdrError, XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { authenticate, encodeAuthSys, NOBODY } from '../../src/rpc/auth.js';
import {
  accept_stat,
  auth_flavor,
  auth_stat,
  decodeCallHeader,
  decodeReplyHeader,
  encodeAcceptedReply,
  encodeAuthError,
  encodeCallHeader,
  encodeRpcMismatch,
} from '../../src/rpc/message.js';
import { AUTH_BADCRED, NFS_NULL_CALL_AUTH_SYS, PROG_MISMATCH_3_3, RPC_MISMATCH_2_2, SUCCESS_REPLY } from '../fixtures/rpc.js';

test('parse: call header with AUTH_SYS', (t) => {
  const r = new XdrReader(NFS_NULL_CALL_AUTH_SYS);
  const h = decodeCallHeader(r);
  t.like(h, { xid: 1234, rpcvers: 2, prog: 100003, vers: 3, proc: 0 });
  t.is(r.remaining, 0);
  t.deepEqual(authenticate(h!.cred), { flavor: auth_flavor.AUTH_SYS, uid: 1000, gid: 100, gids: [100, 27], machinename: 'hosta' });
});

test('generate + round trip: call header with AUTH_SYS', (t) => {
  const cred = encodeAuthSys({ stamp: 7, machinename: 'hosta', uid: 1000, gid: 100, gids: [100, 27] });
  t.deepEqual(encodeCallHeader(new XdrWriter(), 1234, 100003, 3, 0, cred).toBuffer(), NFS_NULL_CALL_AUTH_SYS);
});

test('every truncation of a call header fails with XdrError or is not a call', (t) => {
  for (let cut = 0; cut < NFS_NULL_CALL_AUTH_SYS.length; cut++) {
    const r = new XdrReader(NFS_NULL_CALL_AUTH_SYS.subarray(0, cut));
    try {
      t.is(decodeCallHeader(r), undefined, `cut ${cut}`);
    } catch (e) {
      t.true(e instanceof XdrError, `cut ${cut}`);
    }
  }
});

test('a REPLY is not a call', (t) => {
  t.is(decodeCallHeader(new XdrReader(SUCCESS_REPLY)), undefined);
});

const replies = [
  { name: 'SUCCESS', bytes: SUCCESS_REPLY, write: (w: XdrWriter) => encodeAcceptedReply(w, 1234, accept_stat.SUCCESS), header: { xid: 1234, kind: 'accepted', stat: 0 } },
  {
    name: 'PROG_MISMATCH(3,3)',
    bytes: PROG_MISMATCH_3_3,
    write: (w: XdrWriter) => encodeAcceptedReply(w, 1234, accept_stat.PROG_MISMATCH, { low: 3, high: 3 }),
    header: { xid: 1234, kind: 'accepted', stat: 2, mismatch: { low: 3, high: 3 } },
  },
  { name: 'RPC_MISMATCH(2,2)', bytes: RPC_MISMATCH_2_2, write: (w: XdrWriter) => encodeRpcMismatch(w, 1234), header: { xid: 1234, kind: 'rpc_mismatch', low: 2, high: 2 } },
  { name: 'AUTH_BADCRED', bytes: AUTH_BADCRED, write: (w: XdrWriter) => encodeAuthError(w, 1234, auth_stat.AUTH_BADCRED), header: { xid: 1234, kind: 'auth_error', why: 1 } },
];
for (const f of replies) {
  test(`generate: ${f.name}`, (t) => t.deepEqual(f.write(new XdrWriter()).toBuffer(), f.bytes));
  test(`parse: ${f.name}`, (t) => {
    const r = new XdrReader(f.bytes);
    t.deepEqual(decodeReplyHeader(r), f.header as never);
    t.is(r.remaining, 0);
  });
}

test('PROG_MISMATCH without a range is a programming error', (t) => {
  t.throws(() => encodeAcceptedReply(new XdrWriter(), 1, accept_stat.PROG_MISMATCH));
});

test('AUTH_NONE maps to nobody', (t) => {
  t.like(authenticate({ flavor: auth_flavor.AUTH_NONE, body: Buffer.alloc(0) }), { uid: NOBODY, gid: NOBODY, gids: [] });
});

test('AUTH_SYS limits: machinename<=255, gids<=16, exact body', (t) => {
  const ok = (c: Parameters<typeof encodeAuthSys>[0]) => typeof authenticate(encodeAuthSys(c)) === 'object';
  t.true(ok({ uid: 1, gid: 1, machinename: 'm'.repeat(255), gids: Array(16).fill(5) }));
  t.is(authenticate(encodeAuthSys({ uid: 1, gid: 1, machinename: 'm'.repeat(256) })), auth_stat.AUTH_BADCRED);
  t.is(authenticate(encodeAuthSys({ uid: 1, gid: 1, gids: Array(17).fill(5) })), auth_stat.AUTH_BADCRED);
  const good = encodeAuthSys({ uid: 1, gid: 1 });
  t.is(authenticate({ flavor: auth_flavor.AUTH_SYS, body: Buffer.concat([good.body, Buffer.alloc(4)]) }), auth_stat.AUTH_BADCRED);
  for (let cut = 0; cut < good.body.length; cut++) {
    t.is(authenticate({ flavor: auth_flavor.AUTH_SYS, body: good.body.subarray(0, cut) }), auth_stat.AUTH_BADCRED);
  }
});

test('other flavors are refused', (t) => {
  t.is(authenticate({ flavor: auth_flavor.AUTH_SHORT, body: Buffer.alloc(8) }), auth_stat.AUTH_REJECTEDCRED);
  t.is(authenticate({ flavor: auth_flavor.RPCSEC_GSS, body: Buffer.alloc(8) }), auth_stat.AUTH_TOOWEAK);
  t.is(authenticate({ flavor: 12345, body: Buffer.alloc(0) }), auth_stat.AUTH_TOOWEAK);
});
