/**
 * Every way a byte string can fail to be valid XDR. The RPC layer turns an XdrError raised
 * while decoding arguments into GARBAGE_ARGS, so this class must be raised by the reader only.
 */
export class XdrError extends Error {
  override name = 'XdrError';
}
