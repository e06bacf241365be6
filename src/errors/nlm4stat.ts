/**
 * errno -> nlm4_stats, through the one errno table (nfsstat.ts): knfsd's lockd answers
 * NLM4_STALE_FH for a handle it cannot use and NLM4_FAILED for every other failure to open
 * the file (fs/nfsd/lockd.c nlm_fopen), and so do we; unexpected codes and bugs are logged
 * there.
 */
import { NFS3ERR_BADHANDLE, NFS3ERR_FBIG, NFS3ERR_ROFS, NFS3ERR_STALE } from '../nfs3/constants.js';
import { nlm4_stats, type Nlm4Stat } from '../nlm/constants.js';
import { toNfsstat3 } from './nfsstat.js';

export function toNlm4Stat(err: unknown, where: string, by?: { readonly peer: { readonly address: string } }): Nlm4Stat {
  switch (toNfsstat3(err, where, undefined, by)) {
    case NFS3ERR_STALE:
    case NFS3ERR_BADHANDLE: return nlm4_stats.NLM4_STALE_FH;
    case NFS3ERR_ROFS: return nlm4_stats.NLM4_ROFS;
    case NFS3ERR_FBIG: return nlm4_stats.NLM4_FBIG;
    default: return nlm4_stats.NLM4_FAILED;
  }
}
