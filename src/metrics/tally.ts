/**
 * Counters for the metrics endpoint, counted where nothing of prom-client runs.
 *
 * Tally: a Prometheus counter whose counting costs one addition: the hot path adds to a plain
 * number in a cell (one per label set, looked up once and kept by the caller), and the
 * counter takes what was added since the last scrape when it is collected. prom-client's own
 * inc() hashes the label set on every call, about 0.15 µs; a server answering a call in tens
 * of microseconds pays that several times per call.
 */
import { Counter, type Registry } from 'prom-client';

export interface Cell {
  n: number;
}

interface Held extends Cell {
  readonly labels: Record<string, string>;
  reported: number;
}

export class Tally<K> {
  private readonly cells = new Map<K, Held>();

  constructor(
    o: { name: string; help: string; labelNames?: readonly string[]; registers: Registry[] },
    private readonly labelsOf: (key: K) => Record<string, string>,
  ) {
    const cells = this.cells;
    new Counter({
      name: o.name, help: o.help, labelNames: o.labelNames ?? [], registers: o.registers,
      collect() {
        for (const c of cells.values()) {
          if (c.n === c.reported) continue;
          this.inc(c.labels, c.n - c.reported);
          c.reported = c.n;
        }
      },
    });
  }

  /** The cell of `key` (made on first use): keep it, and add to its `n`. */
  cell(key: K): Cell {
    let c = this.cells.get(key);
    if (c === undefined) this.cells.set(key, c = { labels: this.labelsOf(key), n: 0, reported: 0 });
    return c;
  }

  add(key: K, by = 1): void {
    this.cell(key).n += by;
  }
}

/**
 * A Prometheus counter over running totals kept elsewhere (src/vfs/stats.ts, the process's
 * CPU time): when scraped, it reads them (one per label set) and adds what each grew since
 * the previous scrape.
 */
export function totalsCounter(
  o: { name: string; help: string; labelNames?: readonly string[]; registers: Registry[] },
  read: () => readonly (readonly [Record<string, string>, number])[],
): void {
  const reported = new Map<string, number>();
  new Counter({
    name: o.name, help: o.help, labelNames: o.labelNames ?? [], registers: o.registers,
    collect() {
      for (const [labels, now] of read()) {
        const key = JSON.stringify(labels);
        this.inc(labels, now - (reported.get(key) ?? 0));
        reported.set(key, now);
      }
    },
  });
}
