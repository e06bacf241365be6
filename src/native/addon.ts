/**
 * The N-API addons that `npm install` builds next to their sources (build.mjs): found from
 * dist/src/native/ (compiled) and src/native/ alike. undefined when an addon was not built
 * (no compiler) or does not load: each user has a portable way without it.
 */
import { createRequire } from 'node:module';

export function loadAddon<T>(name: string): T | undefined {
  const require = createRequire(import.meta.url);
  for (const rel of [`../../../src/native/build/Release/${name}.node`, `./build/Release/${name}.node`]) {
    try {
      return require(rel) as T;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') return undefined;
    }
  }
  return undefined;
}
