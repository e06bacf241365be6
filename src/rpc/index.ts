// The RPC layer's public face for program implementations and the server wiring.
export { BusyPoll, DEFAULT_BUSY_POLL_US } from './busy-poll.js';
export { Dispatcher, DISCONNECT, procedureName, type DispatcherOptions, type DispatchResult } from './dispatcher.js';
export { DuplicateRequestCache, type DrcOptions } from './drc.js';
export { createRpcServer, type RpcServer } from './server.js';
export { DEFAULT_MAX_RECORD } from './record-marking.js';
export { NOBODY } from './auth.js';
export { accept_stat, auth_flavor, auth_stat } from './message.js';
export type { Credential, Peer, Procedure, ProgramVersion, RpcCall } from './types.js';
export type { RpcDrop, RpcObserver, RpcRejection } from './observer.js';
