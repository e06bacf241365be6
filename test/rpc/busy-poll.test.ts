// Busy polling after replies: the loop is kept awake for one window after a kick and then
// sleeps again; a window of 0 never spins; the TCP and UDP transports kick it after replying.
import test from 'ava';
import { BUSY_POLL_MODE, BusyPoll } from '../../src/rpc/busy-poll.js';
import { Dispatcher } from '../../src/rpc/dispatcher.js';
import { createRpcServer } from '../../src/rpc/server.js';
import { RpcClient } from '../helpers/rpc-client.js';
import { TOY, TOY_PROG, toyProgram } from '../fixtures/toy-program.js';

/** Turn the event loop until `p` stops being active (at most `bound` turns). */
async function whileActive(p: BusyPoll, bound: number): Promise<void> {
  for (let turns = 0; p.active && turns < bound; turns++) await new Promise((r) => setImmediate(r));
}

test.serial('a kick keeps the loop turning for about one window, then it sleeps', async (t) => {
  const p = new BusyPoll(30_000);
  t.false(p.active);
  const t0 = performance.now();
  p.kick();
  t.true(p.active);
  await whileActive(p, 10_000_000);
  const ms = performance.now() - t0;
  t.false(p.active);
  t.true(ms >= 29, `stopped after ${ms.toFixed(1)} ms, before its 30 ms window`);
  t.true(ms < 2_000, `still spinning after ${ms.toFixed(1)} ms`);
});

test.serial('kicks extend the window; a window of 0 never spins', async (t) => {
  const p = new BusyPoll(20_000);
  const t0 = performance.now();
  p.kick();
  await new Promise((r) => setTimeout(r, 15));
  p.kick();
  await whileActive(p, 10_000_000);
  t.true(performance.now() - t0 >= 34, 'the second kick did not extend the window');
  const off = new BusyPoll(0);
  off.kick();
  t.false(off.active);
});

test.serial('TCP and UDP replies kick the busy poll', async (t) => {
  const busyPoll = new BusyPoll(300_000);
  const server = createRpcServer(new Dispatcher().register(toyProgram().pv), { busyPoll });
  const ports = { tcp: await server.listenTcp('127.0.0.1', 0), udp: await server.listenUdp('127.0.0.1', 0) };
  for (const transport of ['tcp', 'udp'] as const) {
    const c = await RpcClient.connect(transport, '127.0.0.1', ports[transport]);
    // wait out any window still open from the other transport's reply
    while (busyPoll.active) await new Promise((r) => setTimeout(r, 50));
    await c.ok(TOY_PROG, 3, TOY.NULL);
    await new Promise((r) => setImmediate(r));
    t.true(busyPoll.active, `${transport}: no busy poll after a reply`);
    c.close();
  }
  await server.close();
});

test('the native busy poll is built and used (the portable one is a fallback; CI must not hide a failed build)', (t) => {
  if (BUSY_POLL_MODE !== 'native') {
    if (process.env['CI'] === 'true') t.fail('src/native/busy_poll.node was not built: see the npm install output');
    else console.warn(`\n*** ${t.title}: SKIPPED, the addon is not built (npm install builds it; needs python3, make, a C compiler) ***\n`);
    return;
  }
  t.pass();
});
