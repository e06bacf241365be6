/**
 * The one failure type the union throws. `code` is a POSIX errno name as node:fs uses it
 * ('ENOENT', 'EXDEV', ...), plus 'EBADHANDLE' for a handle that is not one of ours.
 * src/errors/nfsstat.ts maps codes to nfsstat3; nothing else does.
 */
export class FsError extends Error {
  override name = 'FsError';
  constructor(readonly code: string, message?: string) {
    super(message ?? code);
  }
}

/** True for errors that carry an errno-style code (FsError or a node:fs error). */
export function hasErrnoCode(err: unknown): err is { code: string } {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string'
    && /^E[A-Z0-9]+$/.test((err as { code: string }).code);
}
