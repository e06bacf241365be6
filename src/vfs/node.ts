/**
 * In-memory nodes: one per object id a client has reached in this run.
 *
 * Rule: a node records where its object lives now (top-most layer) and, for a directory, the
 * layers whose directories it merges (its "stack", top-down, cut after an opaque one). Its
 * union path is derived from its parent chain on demand, so a directory rename moves every
 * descendant at once; so are its paths in the lower layers, which differ below a redirected
 * directory. Paths are computed synchronously right before each syscall and never
 * carried across an await (a concurrent rename cannot redirect a write).
 * Example: /a merged from upper and lower 2 -> { id 5, layer 0, stack [0, 2] }.
 */
import type { Attr, FileType, NodeId } from './types.js';

export interface Node {
  readonly id: NodeId;
  type: FileType;
  /** Primary parent and name (binary string); root: parent 1, name ''. */
  parent: NodeId;
  name: string;
  /** Index of the layer that holds the object now (0 = upper). */
  layer: number;
  /** Directories: merged layers, top-down. Non-directories: [layer], a shared array (never mutate in place). */
  stack: readonly number[];
  /**
   * A directory whose upper copy redirects (redirect.ts): the union path of its lower part.
   * What lies below it is at that path in the lower layers (Union.rels).
   */
  below?: string;
  /**
   * A directory below a lower layer's redirect (or whose parent's lower paths differ by
   * layer): its path in each lower layer of its stack, which wins over `below` (Union.rels).
   */
  deeper?: ReadonlyMap<number, string>;
  attr: Attr | null;
  /** Live children by name (verified this run). */
  children: Map<string, NodeId> | null;
  /**
   * A copied-up lower hard link: its index entry (<workdir>/union-nfsd/index/<dev>.<ino> of the
   * lower inode), a hard link of the upper copy that every name of the object resolves to,
   * and the union link count's offset from the index inode's st_nlink (copy-up.ts).
   */
  index?: Buffer;
  nlinkOff?: number;
}
