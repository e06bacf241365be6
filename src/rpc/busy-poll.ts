/**
 * Busy polling after replies (the idea of Linux's net.core.busy_poll and SO_BUSY_POLL): for a
 * short window after a reply is handed to the kernel, the event loop keeps turning instead of
 * sleeping in epoll_wait: every turn still reads sockets, runs timers and answers calls; only
 * the sleep is skipped.
 *
 * Why: a client with one call in flight (a shell walking a tree, `cp` of small files, a
 * database doing 4 KiB reads) sends its next call a few tens of microseconds after our reply.
 * A thread asleep by then must be woken, and on a virtual machine waking a halted vCPU costs
 * more than the call itself. Measured on these 2-core VMs with the bench's libnfs client:
 * 4 KiB READs at 1 in flight 5,400 -> 12,500 per second with a 50-200 µs window, stats through
 * an 8-component path 1,800 -> 3,000 per second (bench/README.md).
 * How: the native addon (src/native/busy_poll.c) keeps a uv_idle handle active for the window,
 * so libuv polls with a zero timeout and no JavaScript runs per turn. Without the addon (not
 * built: no compiler at install), a pending setImmediate does the same, at about 400 bytes of
 * garbage a turn and a million turns a second: the young-generation collections that cause
 * lengthen the latency tail (bench/README.md, "Where the microseconds go").
 * Cost: when the server goes idle, at most one window of one core's time after the last
 * reply; under load none (the loop is busy anyway). A window of 0 turns it off.
 * Example: window 200 µs, replies at t=0 and t=150 µs -> the loop polls until t=350 µs, then
 * sleeps in epoll_wait as usual.
 */
import { loadAddon } from '../native/addon.js';

export const DEFAULT_BUSY_POLL_US = 200;

interface Native {
  kick(windowNs: number): void;
  active(): boolean;
}

/** The addon (src/native/busy_poll.c); undefined when it was not built. */
const native = loadAddon<Native>('busy_poll');

/** Which way the loop is kept awake: 'native' (uv_idle) or 'portable' (setImmediate). */
export const BUSY_POLL_MODE: 'native' | 'portable' = native === undefined ? 'portable' : 'native';

export class BusyPoll {
  /** performance.now() until which the loop keeps polling (portable mode). */
  private until = 0;
  private spinning = false;
  private readonly windowMs: number;

  constructor(windowUs: number = DEFAULT_BUSY_POLL_US) {
    this.windowMs = Math.max(0, windowUs) / 1000;
  }

  /** A reply has been handed to the kernel: keep the loop awake for one more window. */
  readonly kick = (): void => {
    if (this.windowMs === 0) return;
    if (native !== undefined) {
      native.kick(this.windowMs * 1e6);
      return;
    }
    this.until = performance.now() + this.windowMs;
    if (!this.spinning) {
      this.spinning = true;
      setImmediate(this.turn);
    }
  };

  /** Is the loop being kept awake right now? */
  get active(): boolean {
    return native !== undefined ? native.active() : this.spinning;
  }

  private readonly turn = (): void => {
    if (performance.now() < this.until) setImmediate(this.turn);
    else this.spinning = false;
  };
}
