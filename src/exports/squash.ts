/**
 * The credential a call acts with once its client's rule has been applied (knfsd's
 * nfsd_setuser): AUTH_SYS proves nothing, so the export decides what a claimed uid may do.
 *
 * Rule: `all_squash` makes every caller the anonymous user (anonuid, anongid, no groups);
 * `root_squash` maps uid 0 to anonuid and gid 0 to anongid, in the primary gid and in the
 * group list, whatever the uid; `no_root_squash` keeps the credential as sent. An AUTH_NONE
 * caller is always the anonymous user.
 * Example: root_squash, uid 0 gid 0 gids [0, 10] -> 65534, 65534, [65534, 10].
 * The credential comes back unchanged (the same object) when nothing applies, so the common
 * call allocates nothing.
 */
import { auth_flavor } from '../rpc/message.js';
import type { Credential } from '../rpc/types.js';
import type { ClientOptions } from './client-rules.js';

export function squash(o: ClientOptions, cred: Credential): Credential {
  if (o.squash === 'all' || cred.flavor === auth_flavor.AUTH_NONE) {
    if (cred.uid === o.anonuid && cred.gid === o.anongid && cred.gids.length === 0) return cred;
    return { flavor: cred.flavor, uid: o.anonuid, gid: o.anongid, gids: [], machinename: cred.machinename };
  }
  if (o.squash === 'none' || (cred.uid !== 0 && cred.gid !== 0 && !cred.gids.includes(0))) return cred;
  return {
    flavor: cred.flavor,
    uid: cred.uid === 0 ? o.anonuid : cred.uid,
    gid: cred.gid === 0 ? o.anongid : cred.gid,
    gids: cred.gids.map((g) => (g === 0 ? o.anongid : g)),
    machinename: cred.machinename,
  };
}
