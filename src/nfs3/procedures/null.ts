/*
 * RFC 1813 §3.3.0
 *
 *   void NFSPROC3_NULL(void) = 0;
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { Nfs3Context } from '../context.js';

export function null3(_ctx: Nfs3Context, _call: RpcCall, _reply: XdrWriter): void {
  // Nothing to decode, nothing to answer: the accepted-reply header is the whole reply.
}
