/*
 * Busy polling without allocation (src/rpc/busy-poll.ts): an active uv_idle handle makes
 * libuv poll with a zero timeout, so the event loop keeps turning (reading sockets, running
 * callbacks) instead of sleeping in epoll_wait, with no JavaScript run per turn. The portable
 * way, a setImmediate per turn, allocates about 400 bytes of garbage each time, over 1 million
 * turns a second while spinning: the young-generation collections that caused were most of
 * the server's p99 latency (bench/README.md).
 *
 *   kick(windowNs)  keep the loop awake until windowNs from now (extending any window open)
 *   active()        is it being kept awake now?
 *
 * The idle callback stops the handle once the deadline has passed; nothing runs when no
 * window is open. One handle per Node environment (instance data), closed at its teardown.
 */
#include <node_api.h>
#include <stdlib.h>
#include <uv.h>

typedef struct {
  uv_idle_t idle;
  uint64_t deadline; /* uv_hrtime() nanoseconds */
} busy_poll_t;

static void on_idle(uv_idle_t *h) {
  busy_poll_t *bp = (busy_poll_t *)h;
  if (uv_hrtime() >= bp->deadline) uv_idle_stop(h);
}

static void on_closed(uv_handle_t *h) {
  free(h);
}

static void teardown(void *data) {
  busy_poll_t *bp = data;
  uv_idle_stop(&bp->idle);
  uv_close((uv_handle_t *)&bp->idle, on_closed);
}

static busy_poll_t *state(napi_env env) {
  void *data = NULL;
  napi_get_instance_data(env, &data);
  return data;
}

static napi_value kick(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double window = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_double(env, argv[0], &window) != napi_ok || !(window >= 0)) {
    napi_throw_type_error(env, NULL, "kick(windowNs): windowNs is a number >= 0");
    return NULL;
  }
  busy_poll_t *bp = state(env);
  bp->deadline = uv_hrtime() + (uint64_t)window;
  if (!uv_is_active((uv_handle_t *)&bp->idle)) uv_idle_start(&bp->idle, on_idle);
  return NULL;
}

static napi_value active(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_get_boolean(env, uv_is_active((uv_handle_t *)&state(env)->idle) != 0, &result);
  return result;
}

static void no_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)data; (void)hint; /* the handle is closed by the cleanup hook */
}

NAPI_MODULE_INIT() {
  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return NULL;
  busy_poll_t *bp = calloc(1, sizeof *bp);
  if (bp == NULL || uv_idle_init(loop, &bp->idle) != 0) {
    napi_throw_error(env, NULL, "busy_poll: cannot make an idle handle");
    return NULL;
  }
  napi_set_instance_data(env, bp, no_finalize, NULL);
  napi_add_env_cleanup_hook(env, teardown, bp);
  napi_property_descriptor props[] = {
    { "kick", NULL, kick, NULL, NULL, NULL, napi_default, NULL },
    { "active", NULL, active, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
