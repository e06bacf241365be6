// Squashing as knfsd's nfsd_setuser applies it.
import test from 'ava';
import { DEFAULT_OPTIONS, type ClientOptions } from '../../src/exports/client-rules.js';
import { squash } from '../../src/exports/squash.js';
import { auth_flavor } from '../../src/rpc/message.js';
import type { Credential } from '../../src/rpc/types.js';

const sys = (uid: number, gid: number, gids: number[]): Credential => ({ flavor: auth_flavor.AUTH_SYS, uid, gid, gids, machinename: 'h' });
const o = (x: Partial<ClientOptions>): ClientOptions => ({ ...DEFAULT_OPTIONS, ...x });
const ids = (c: Credential) => [c.uid, c.gid, c.gids];

test('root_squash maps uid 0, gid 0 and group 0 to the anonymous ids, whoever the caller', (t) => {
  t.deepEqual(ids(squash(o({}), sys(0, 0, [0, 10]))), [65534, 65534, [65534, 10]]);
  t.deepEqual(ids(squash(o({}), sys(1000, 0, [4, 0]))), [1000, 65534, [4, 65534]]);
  t.deepEqual(ids(squash(o({ anonuid: 99, anongid: 98 }), sys(0, 5, []))), [99, 5, []]);
});

test('a credential nothing applies to comes back as the same object (no allocation)', (t) => {
  const c = sys(1000, 1000, [4, 27]);
  t.is(squash(o({}), c), c);
  t.is(squash(o({ squash: 'none' }), sys(0, 0, [0])).uid, 0);
  const root = sys(0, 0, [0]);
  t.is(squash(o({ squash: 'none' }), root), root);
});

test('all_squash makes everyone the anonymous user with no groups', (t) => {
  t.deepEqual(ids(squash(o({ squash: 'all', anonuid: 1000, anongid: 100 }), sys(0, 0, [0, 1]))), [1000, 100, []]);
  t.deepEqual(ids(squash(o({ squash: 'all' }), sys(1000, 1000, [27]))), [65534, 65534, []]);
});

test('AUTH_NONE is the anonymous user of the rule, even with no_root_squash', (t) => {
  const none: Credential = { flavor: auth_flavor.AUTH_NONE, uid: 65534, gid: 65534, gids: [], machinename: '' };
  t.is(squash(o({ squash: 'none' }), none), none);
  t.deepEqual(ids(squash(o({ squash: 'none', anonuid: 7, anongid: 8 }), none)), [7, 8, []]);
});
