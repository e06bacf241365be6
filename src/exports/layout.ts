/**
 * The directories of all exports, checked together before anything is opened, as overlayfs
 * refuses overlapping layers at mount time.
 *
 * Rule: a directory the server writes (an upper, a workdir, an explicit state directory) must
 * not be, contain, or lie inside any other directory of any export, by real path (symlinks
 * resolved). Otherwise a client could reach the server's own state through the export (the
 * handle key, the identity log), or one union's writes would show up, unannounced, in another
 * union's layers. Lower layers may be shared between exports: that is the point of a fleet.
 * A per-client template (/srv/n/{client}/upper) is compared as the real path of what comes
 * before {client} followed by the rest, so it covers every client's directory; that leading
 * directory must exist.
 * Example: upper /srv/u with workdir /srv/u/work is refused; upper /srv/n1/upper and workdir
 * /srv/n1/work are fine.
 */
import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, resolve, sep } from 'node:path';
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
    const add = (path: string | undefined, role: string, writable: boolean, created = false): void => {
      if (path === undefined) return;
      let real: string;
      try {
        real = realOf(path, created);
      } catch (err) {
        throw new UsageError(`${exp.source}: ${role} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      dirs.push({ real, role: `${role} ${path}`, exp, writable });
    };
    exp.lowers.forEach((l, i) => add(l, `lower ${i + 1}`, false));
    add(exp.upper, 'upper', true);
    add(exp.workdir, 'workdir', true);
    add(exp.state, 'state', true, true);
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

/**
 * The real path of a directory: symlinks resolved. A template's {client} part, and a state
 * directory the server creates (`created`), are kept as written below the real path of the
 * part that exists (the template's leading directory must).
 */
function realOf(path: string, created: boolean): string {
  const at = path.indexOf('{client}');
  let fixed = resolve(at < 0 ? path : dirname(path.slice(0, at + 1)));
  const rest = at < 0 ? '' : resolve(path).slice(fixed.length);
  if (created) {
    let tail = '';
    while (!existsSync(fixed) && dirname(fixed) !== fixed) {
      tail = sep + basename(fixed) + tail;
      fixed = dirname(fixed);
    }
    return realpathSync(fixed) + tail + rest;
  }
  return realpathSync(fixed) + rest;
}

function inside(child: string, parent: string): boolean {
  return child.startsWith(parent === sep ? sep : parent + sep);
}
