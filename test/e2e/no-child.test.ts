/**
 * Issue 11: no child process on any path of the server. Every TestServer runs under
 * `strace -f -e trace=execve` and its stop() throws when the server started a process
 * (libnfs/server.ts), so each test of the suite checks the servers it ran. This shows that
 * check failing: a server whose wrapper starts a process before it execs node is caught.
 */
import test from 'ava';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { gate, missing } from './libnfs/env.js';
import { cleanupTemp, makeTemp } from './libnfs/oracle.js';
import { TestServer } from './libnfs/server.js';

test('a server that starts a process fails its test (strace -f -e trace=execve)', async (t) => {
  if (!gate(t, 'no-child', missing({ server: true }))) return;
  const base = makeTemp('unfs-nochild-');
  t.teardown(() => cleanupTemp(base));
  fs.mkdirSync(join(base, 'lower'));
  // sh runs /bin/true as a child, then execs node in its own process (allowed: the wrapper's)
  const server = new TestServer({ lowers: [join(base, 'lower')], wrap: ['sh', '-c', '/bin/true; exec "$@"', 'sh'] });
  await server.start();
  const err = await t.throwsAsync(server.stop());
  t.regex(err?.message ?? '', /started processes .*\/bin\/true/);
});
