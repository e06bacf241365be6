// The control socket: one JSON request, one answer; the socket is private to its owner.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import test from 'ava';
import { listenControl, sendControl } from '../src/control.js';
import { mkTmp } from './helpers/layers.js';

test('reset requests reach the handler; failures and malformed requests get an error answer', async (t) => {
  const dir = mkTmp('unfs-control-');
  const sock = path.join(dir, 'control.sock');
  const seen: string[] = [];
  const server = await listenControl(sock, {
    reset: async (exp, client) => {
      if (client === 'ghost') throw new Error('no such client');
      seen.push(`${exp} ${client}`);
    },
  });
  t.teardown(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  t.is(fs.statSync(sock).mode & 0o777, 0o600);
  t.deepEqual(await sendControl(sock, { op: 'reset', export: '/fleet', client: 'node7' }), { ok: true });
  t.deepEqual(seen, ['/fleet node7']);
  t.deepEqual(await sendControl(sock, { op: 'reset', export: '/fleet', client: 'ghost' }), { ok: false, error: 'no such client' });
  const raw = (text: string) => new Promise<string>((resolve) => {
    const c = net.connect(sock, () => c.write(text));
    let out = '';
    c.on('data', (b: Buffer) => { out += b.toString(); });
    c.on('end', () => resolve(out));
  });
  t.regex(await raw('not json\n'), /"ok":false.*not one JSON request/);
  t.regex(await raw('{"op":"drop-all"}\n'), /"ok":false.*the one request is/);
  t.regex(await raw('x'.repeat(5000)), /"ok":false/, 'an over-long request is answered, not buffered');
  // A second server cannot take a live socket; a dead one's socket is taken over.
  await t.throwsAsync(listenControl(sock, { reset: async () => undefined }), { message: /in use/ });
});

test('a stale socket file left by a dead server is replaced', async (t) => {
  const dir = mkTmp('unfs-control-');
  const sock = path.join(dir, 'control.sock');
  fs.writeFileSync(sock, '');
  const server = await listenControl(sock, { reset: async () => undefined });
  t.teardown(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  t.deepEqual(await sendControl(sock, { op: 'reset', export: '/x', client: 'y' }), { ok: true });
});
