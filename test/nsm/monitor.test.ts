// The status monitor's durable state and its notifications after a restart, against a fake
// client statd (with its own portmapper) on loopback.
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import { StatusMonitor } from '../../src/nsm/monitor.js';
import { SM_PROG, SM_VERS, SMPROC } from '../../src/nsm/program.js';
import { createPortmapProgram, IPPROTO_UDP, PortmapRegistry } from '../../src/portmap/program.js';
import { createRpcServer, Dispatcher } from '../../src/rpc/index.js';
import type { ProgramVersion } from '../../src/rpc/types.js';
import { mkTmp } from '../helpers/layers.js';

test('the state goes up by 2 at every start, the client list survives a restart and is emptied once told', async (t) => {
  const dir = mkTmp('unfs-nsm-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const first = new StatusMonitor(dir);
  t.deepEqual(first.open(), []);
  t.is(first.state, 3);
  first.monitor('127.0.0.1', 'guest', '127.0.0.1');
  first.monitor('127.0.0.1', 'guest', '127.0.0.1');
  first.monitor('::1', 'other', undefined);
  first.close();

  const notified: { name: string; state: number }[] = [];
  const procedures: ProgramVersion['procedures'][number][] = [];
  procedures[SMPROC.NOTIFY] = (call) => { notified.push({ name: call.args.string(1024).toString(), state: call.args.int32() }); };
  const registry = new PortmapRegistry();
  const statd = createRpcServer(new Dispatcher().register(createPortmapProgram(registry)).register({ prog: SM_PROG, vers: SM_VERS, name: 'fake statd', procedures }));
  const port = await statd.listenUdp('127.0.0.1', 0);
  registry.set({ prog: SM_PROG, vers: SM_VERS, prot: IPPROTO_UDP, port });
  t.teardown(() => statd.close());

  const second = new StatusMonitor(dir);
  const listed = second.open();
  t.is(second.state, 5);
  t.deepEqual(listed.map((c) => [c.address, c.caller, c.local]).sort(), [['127.0.0.1', 'guest', '127.0.0.1'], ['::1', 'other', undefined]]);
  // ::1 has no statd here: it is retried, then given up.
  await second.notifyAll(listed, { name: 'server', pmapPort: port, giveUpMs: 300, retryMs: 50 });
  t.deepEqual(notified, [{ name: 'server', state: 5 }]);
  t.deepEqual(fs.readdirSync(path.join(dir, 'sm')), [], 'the list is emptied');
  second.close();

  const third = new StatusMonitor(dir);
  t.deepEqual(third.open(), [], 'nobody to tell after a restart with no locks');
  t.is(third.state, 7);
  third.close();
});

test('a client that locks again before it is told stays listed', async (t) => {
  const dir = mkTmp('unfs-nsm-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const a = new StatusMonitor(dir);
  a.open();
  a.monitor('127.0.0.9', 'guest', undefined);
  const b = new StatusMonitor(dir);
  const listed = b.open();
  b.monitor('127.0.0.9', 'guest', undefined);
  await b.notifyAll(listed, { pmapPort: 9, giveUpMs: 100, retryMs: 20 });
  t.deepEqual(fs.readdirSync(path.join(dir, 'sm')), ['127.0.0.9']);
  b.close();
});

test('an unusable state directory does not stop the server: nothing to notify, and every lock request fails', (t) => {
  const m = new StatusMonitor('/dev/null/nsm');
  t.deepEqual(m.open(), []);
  t.throws(() => m.monitor('127.0.0.1', 'guest', undefined), { code: 'ENOTDIR' });
  m.close();
});
