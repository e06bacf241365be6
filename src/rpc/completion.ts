/**
 * What a transport runs once it is done with one call: the reply has been handed to the kernel,
 * or was dropped (no reply, a retransmit in progress, a closed connection, a UDP reply replaced
 * by SYSTEM_ERR), or the connection failed. Procedures use it to lend memory to the reply
 * (a pooled READ buffer spliced in with opaqueRef) and take it back only when nothing refers to
 * it any more; the TCP transport uses it to recycle the record buffer the call's arguments are
 * views of. Each callback runs exactly once; `run` may be called any number of times.
 */
import { child } from '../log.js';

const log = child('rpc');

export class CallCompletion {
  private fns: (() => void)[] | undefined;
  private ran = false;

  /** Adds a callback; after `run`, it runs at once. */
  add(fn: () => void): void {
    if (this.ran) {
      runOne(fn);
      return;
    }
    (this.fns ??= []).push(fn);
  }

  get done(): boolean {
    return this.ran;
  }

  run(): void {
    if (this.ran) return;
    this.ran = true;
    const fns = this.fns;
    this.fns = undefined;
    if (fns) for (const fn of fns) runOne(fn);
  }
}

function runOne(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    log.error(`call completion callback failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
}
