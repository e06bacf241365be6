/**
 * What unions open at the same time share (the unions of a per-client export over one set of
 * lowers): one value per key, made by the first union that asks and dropped when the last one
 * holding it releases it. Sharing only while held is what makes it safe: lowers are immutable
 * while served, and a lower rebuilt between runs is read afresh by the next union.
 * Example: fifty unions over /srv/os acquire 'lowerFacts' of /srv/os once; after all fifty
 * closed, the next union scans it again.
 */
export class SharedWhileHeld<V> {
  private readonly held = new Map<string, { value: V; users: number }>();

  constructor(private readonly make: (key: string) => V) {}

  acquire(key: string): { readonly value: V; release(): void } {
    let e = this.held.get(key);
    if (e === undefined) this.held.set(key, e = { value: this.make(key), users: 0 });
    e.users++;
    const entry = e;
    let released = false;
    return {
      value: entry.value,
      release: () => {
        if (released) return;
        released = true;
        if (--entry.users === 0 && this.held.get(key) === entry) this.held.delete(key);
      },
    };
  }
}
