/**
 * NLM version 4 (the lock manager of NFSv3 clients; X/Open XNFS, "Protocols for Interworking:
 * XNFS, Version 3W", chapter 10) and the NSM status monitor it relies on (chapter 11).
 *
 *   program NLM_PROG { version NLM4_VERS {
 *     void         NLMPROC4_NULL(void)              = 0;
 *     nlm4_testres NLMPROC4_TEST(nlm4_testargs)     = 1;
 *     nlm4_res     NLMPROC4_LOCK(nlm4_lockargs)     = 2;
 *     nlm4_res     NLMPROC4_CANCEL(nlm4_cancargs)   = 3;
 *     nlm4_res     NLMPROC4_UNLOCK(nlm4_unlockargs) = 4;
 *     nlm4_res     NLMPROC4_GRANTED(nlm4_testargs)  = 5;   (server -> client callback)
 *     void         NLMPROC4_TEST_MSG .. GRANTED_MSG = 6..10  (answered by a _RES call back)
 *     void         NLMPROC4_TEST_RES .. GRANTED_RES = 11..15
 *     nlm4_shareres NLMPROC4_SHARE(nlm4_shareargs)  = 20;
 *     nlm4_shareres NLMPROC4_UNSHARE(nlm4_shareargs)= 21;
 *     nlm4_res     NLMPROC4_NM_LOCK(nlm4_lockargs)  = 22;
 *     void         NLMPROC4_FREE_ALL(nlm4_notify)   = 23;
 *   } = 4; } = 100021;
 */
export const NLM_PROG = 100021;
export const NLM4_VERS = 4;

export const NLMPROC4 = {
  NULL: 0, TEST: 1, LOCK: 2, CANCEL: 3, UNLOCK: 4, GRANTED: 5,
  TEST_MSG: 6, LOCK_MSG: 7, CANCEL_MSG: 8, UNLOCK_MSG: 9, GRANTED_MSG: 10,
  TEST_RES: 11, LOCK_RES: 12, CANCEL_RES: 13, UNLOCK_RES: 14, GRANTED_RES: 15,
  SHARE: 20, UNSHARE: 21, NM_LOCK: 22, FREE_ALL: 23,
} as const;

export const NLMPROC4_NAMES: readonly string[] = [
  'null', 'test', 'lock', 'cancel', 'unlock', 'granted',
  'test_msg', 'lock_msg', 'cancel_msg', 'unlock_msg', 'granted_msg',
  'test_res', 'lock_res', 'cancel_res', 'unlock_res', 'granted_res',
  '', '', '', '', 'share', 'unshare', 'nm_lock', 'free_all',
];

export const nlm4_stats = {
  NLM4_GRANTED: 0,
  NLM4_DENIED: 1,
  NLM4_DENIED_NOLOCKS: 2,
  NLM4_BLOCKED: 3,
  NLM4_DENIED_GRACE_PERIOD: 4,
  NLM4_DEADLCK: 5,
  NLM4_ROFS: 6,
  NLM4_STALE_FH: 7,
  NLM4_FBIG: 8,
  NLM4_FAILED: 9,
} as const;
export type Nlm4Stat = (typeof nlm4_stats)[keyof typeof nlm4_stats];

/** LM_MAXSTRLEN: caller_name and nlm4_notify's name. */
export const LM_MAXSTRLEN = 1024;
/** MAXNETOBJ_SZ: cookies, owner handles, file handles. */
export const MAXNETOBJ_SZ = 1024;

/** fsh4_mode and fsh4_access of SHARE (DOS share reservations). */
export const fsh4_mode = { fsm_DN: 0, fsm_DR: 1, fsm_DW: 2, fsm_DRW: 3 } as const;
export const fsh4_access = { fsa_NONE: 0, fsa_R: 1, fsa_W: 2, fsa_RW: 3 } as const;

