/**
 * Call credentials (RFC 5531 §8.2, §14). AUTH_NONE maps to the anonymous user 65534;
 * AUTH_SYS is parsed with its wire limits (machinename<255>, gids<16>) and must consume its
 * body exactly. AUTH_SYS proves nothing — any local user can forge it — so exports still need
 * address rules and squashing; this module only decodes.
 */
import { XdrError, XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { auth_flavor, auth_stat, type AuthStat, type OpaqueAuth } from './message.js';
import type { Credential } from './types.js';

export const NOBODY = 65534;
export const MAX_MACHINENAME = 255;
export const MAX_GIDS = 16;

const ANONYMOUS: Credential = Object.freeze({
  flavor: auth_flavor.AUTH_NONE,
  uid: NOBODY,
  gid: NOBODY,
  gids: Object.freeze([]) as readonly number[],
  machinename: '',
});

/** The caller's identity, or the auth_stat to answer with in an AUTH_ERROR. */
export function authenticate(cred: OpaqueAuth): Credential | AuthStat {
  switch (cred.flavor) {
    case auth_flavor.AUTH_NONE:
      return ANONYMOUS;
    case auth_flavor.AUTH_SYS:
      return parseAuthSys(cred.body) ?? auth_stat.AUTH_BADCRED;
    case auth_flavor.AUTH_SHORT:
      // We never hand out short-hand verifiers, so the client must resend its full credential.
      return auth_stat.AUTH_REJECTEDCRED;
    default:
      return auth_stat.AUTH_TOOWEAK;
  }
}

function parseAuthSys(body: Buffer): Credential | undefined {
  const r = new XdrReader(body);
  try {
    r.uint32(); // stamp
    const machinename = r.string(MAX_MACHINENAME).toString('utf8');
    const uid = r.uint32();
    const gid = r.uint32();
    const n = r.arrayLength(MAX_GIDS);
    const gids: number[] = [];
    for (let i = 0; i < n; i++) gids.push(r.uint32());
    r.done();
    return { flavor: auth_flavor.AUTH_SYS, uid, gid, gids, machinename };
  } catch (e) {
    if (e instanceof XdrError) return undefined;
    throw e;
  }
}

/** Caller side: an AUTH_SYS credential (the test client, rpcbind registration). */
export function encodeAuthSys(c: { uid: number; gid: number; gids?: readonly number[]; machinename?: string; stamp?: number }): OpaqueAuth {
  const w = new XdrWriter(64);
  w.uint32(c.stamp ?? 0).string(c.machinename ?? 'localhost').uint32(c.uid).uint32(c.gid);
  const gids = c.gids ?? [];
  w.uint32(gids.length);
  for (const g of gids) w.uint32(g);
  return { flavor: auth_flavor.AUTH_SYS, body: w.toBuffer() };
}

export const AUTH_NONE_CRED: OpaqueAuth = Object.freeze({ flavor: auth_flavor.AUTH_NONE, body: Buffer.alloc(0) });
