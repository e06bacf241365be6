/*
 * RFC 1813 §3.3.0
 *
 *   void NFSPROC3_NULL(void) = 0;
 */
import type { RpcCall } from '../../rpc/types.js';

/** The one procedure with no handle, so no export and no admission: anyone may ping. */
export function null3(call: RpcCall): void {
  // Nothing to answer: the accepted-reply header is the whole reply.
  call.args.done();
}
