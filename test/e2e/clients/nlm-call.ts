/**
 * A scripted lock client for runs inside a network namespace (kernel-locks.test.ts), where
 * the test process cannot call from:
 *   node nlm-call.js lock HOST EXPORT FILE [reclaim]   -> prints the nlm4_stats of an exclusive,
 *                                                         non-blocking LOCK of the whole file
 *   node nlm-call.js test HOST EXPORT FILE             -> prints "<stat>" or "<stat> <holder svid>"
 *   node nlm-call.js unlock HOST EXPORT FILE           -> prints the nlm4_stats
 * All calls go over TCP to port 2049, as caller_name "nlm-call", svid 4242.
 */
import { NlmClient } from '../../helpers/nlm-client.js';
import { NfsView } from '../../helpers/nfs-view.js';

const [op, host, exportPath, file, flag] = process.argv.slice(2) as [string, string, string, string, string | undefined];
const c = await NlmClient.connect('tcp', host, 2049, { timeoutMs: 20_000 });
const fh = await (await NfsView.mount(c.rpc, exportPath)).lookup(file);
if (fh === undefined) throw new Error(`${file}: no such file`);
const lock = { fh, caller: 'nlm-call', svid: 4242 };
if (op === 'lock') {
  process.stdout.write(`${await c.lock({ ...lock, reclaim: flag === 'reclaim' })}\n`);
} else if (op === 'test') {
  const r = await c.test(lock);
  process.stdout.write(`${r.stat}${r.holder !== undefined ? ` ${r.holder.svid}` : ''}\n`);
} else {
  process.stdout.write(`${await c.unlock(lock)}\n`);
}
c.close();
