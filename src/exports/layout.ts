/**
 * The directories of all exports, checked together before anything is opened, as overlayfs
 * refuses overlapping layers at mount time.
 *
 * Rule: a directory the server writes (an upper, a workdir, an explicit state directory) must
 * not be, contain, or lie inside any other directory of any export, by real path (symlinks
 * resolved). Otherwise a client could reach the server's own state through the export (the
 * handle key, the identity log), or one union's writes would show up, unannounced, in another
 * union's layers. Lower layers may be shared between exports: that is the point of a fleet.
 * Example: upper /srv/u with workdir /srv/u/work is refused; upper /srv/n1/upper and workdir
 * /srv/n1/work are fine.
 */
import { realpathSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import type { ExportConfig } from '../config.js';
import { UsageError } from '../config.js';

interface Dir {
  readonly real: string;
  readonly role: string;
  readonly exp: ExportConfig;
  readonly writable: boolean;
}

export function checkLayout(exports: readonly ExportConfig[]): void {
  const dirs: Dir[] = [];
  for (const exp of exports) {
    const add = (path: string | undefined, role: string, writable: boolean): void => {
      if (path === undefined) return;
      let real: string;
      try {
        real = realpathSync(resolve(path));
      } catch (err) {
        throw new UsageError(`${exp.source}: ${role} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      dirs.push({ real, role: `${role} ${path}`, exp, writable });
    };
    exp.lowers.forEach((l, i) => add(l, `lower ${i + 1}`, false));
    add(exp.upper, 'upper', true);
    add(exp.workdir, 'workdir', true);
    add(exp.state, 'state', true);
  }
  for (let i = 0; i < dirs.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = dirs[i]!, b = dirs[j]!;
      if (!a.writable && !b.writable) continue;
      const how = a.real === b.real ? 'is the same directory as'
        : inside(a.real, b.real) ? 'lies inside'
          : inside(b.real, a.real) ? 'contains' : undefined;
      if (how === undefined) continue;
      const whose = a.exp === b.exp ? '' : ` of export ${b.exp.path} (${b.exp.source})`;
      throw new UsageError(`${a.exp.source}: export ${a.exp.path}: ${a.role} ${how} ${b.role}${whose}; ` +
        'the directories a union writes must not overlap any layer or each other');
    }
  }
}

function inside(child: string, parent: string): boolean {
  return child.startsWith(parent === sep ? sep : parent + sep);
}
