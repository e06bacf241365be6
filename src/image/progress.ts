/**
 * Progress of a long pull, for a person at a terminal: one line per layer, redrawn in place
 * at most ten times a second. When stderr is not a terminal (a service, a log file) nothing
 * is drawn; the cache logs a line as each layer starts and ends instead.
 */
const REDRAW_MS = 100;

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

export class Progress {
  private done = 0;
  private drawn = 0;
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly label: string, private readonly total: number) {}

  add(n: number): void {
    this.done += n;
    const now = Date.now();
    if (this.tty && now - this.drawn >= REDRAW_MS) {
      this.drawn = now;
      this.draw();
    }
  }

  private draw(): void {
    const pct = this.total > 0 ? ` ${Math.min(100, Math.floor((this.done / this.total) * 100))}%` : '';
    process.stderr.write(`\r\x1b[K${this.label}  ${mb(this.done)} / ${mb(this.total)}${pct}`);
  }

  /** Leaves the finished line on the screen. */
  end(): void {
    if (!this.tty || this.drawn === 0) return;
    this.draw();
    process.stderr.write('\n');
  }
}
