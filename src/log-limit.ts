/**
 * Log lines that a client can cause, at most one per key per interval: a flood of bad calls
 * must not become a flood of log lines. The next line of a key after its interval says how
 * many were left out.
 */
import type { Logger } from './log.js';

/** Keys remembered at most; the oldest go first (a client cycling keys still gets one line per key). */
const MAX_KEYS = 4096;

export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly log: Logger, private readonly intervalMs: number) {}

  warn(key: string, message: string, meta: Record<string, unknown> = {}): void {
    const now = Date.now();
    const seen = this.last.get(key);
    if (seen !== undefined && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    const left = seen?.suppressed ?? 0;
    this.last.delete(key);
    this.last.set(key, { at: now, suppressed: 0 });
    if (this.last.size > MAX_KEYS) this.last.delete(this.last.keys().next().value as string);
    this.log.warn(left > 0 ? `${message} (and ${left} more like it since the last such line)` : message, meta);
  }
}
