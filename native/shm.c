// tccl_shm: what Node cannot do by itself for the shared-memory transport: map a POSIX
// shared-memory segment as an ArrayBuffer, unlink one by name, and copy a large payload
// straight out of a peer process (Linux cross-memory attach, as Open MPI's vader does), so
// big messages take one copy instead of two through the ring.
// It also waits on a word of a shared mapping (a futex: Atomics.wait only works on a
// SharedArrayBuffer and within one process), so a rank waiting in a shared-memory collective
// gives its core to the peer it waits for.
// Everything else (rings, doorbells, liveness, the protocol) lives in TypeScript.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sched.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <limits.h>
#include <unistd.h>

#define NAME_MAX_BYTES 240

static napi_value throw_errno(napi_env env, const char* what, const char* name, int err) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s %s: %s", what, name, strerror(err));
  napi_throw_error(env, err == EEXIST ? "EEXIST" : err == ENOENT ? "ENOENT" : "ESHM", msg);
  return NULL;
}

static int read_name(napi_env env, napi_value v, char* out) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, out, NAME_MAX_BYTES + 1, &len) != napi_ok || len == 0 || len >= NAME_MAX_BYTES || out[0] != '/' || strchr(out + 1, '/')) {
    napi_throw_type_error(env, NULL, "segment name must be '/name' with no other '/' and under 240 bytes");
    return 0;
  }
  return 1;
}

static void unmap(napi_env env, void* data, void* hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

// map(name, bytes, create): ArrayBuffer over the segment. create=true makes a new one
// (O_EXCL, so two jobs can never share a name) and sizes it; create=false opens an existing one.
static napi_value map_segment(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "map(name, bytes, create) takes 3 arguments");
    return NULL;
  }
  char name[NAME_MAX_BYTES + 1];
  if (!read_name(env, argv[0], name)) return NULL;
  double bytes_d = 0;
  bool create = false;
  if (napi_get_value_double(env, argv[1], &bytes_d) != napi_ok || !(bytes_d > 0) || bytes_d > 0x1p46) {
    napi_throw_range_error(env, NULL, "segment size must be a positive number of bytes");
    return NULL;
  }
  napi_get_value_bool(env, argv[2], &create);
  size_t bytes = (size_t)bytes_d;
  int fd = shm_open(name, create ? (O_RDWR | O_CREAT | O_EXCL) : O_RDWR, 0600);
  if (fd < 0) return throw_errno(env, create ? "cannot create shared-memory segment" : "cannot open shared-memory segment", name, errno);
  if (create && ftruncate(fd, (off_t)bytes) != 0) {
    int err = errno;
    close(fd);
    shm_unlink(name);
    return throw_errno(env, "cannot size shared-memory segment", name, err);
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (size_t)st.st_size < bytes) {
    int err = errno ? errno : EINVAL;
    close(fd);
    return throw_errno(env, "shared-memory segment is smaller than expected:", name, err);
  }
  void* mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);  // the mapping keeps the segment alive
  if (mem == MAP_FAILED) {
    if (create) shm_unlink(name);
    return throw_errno(env, "cannot map shared-memory segment", name, err);
  }
  napi_value ab;
  if (napi_create_external_arraybuffer(env, mem, bytes, unmap, (void*)(uintptr_t)bytes, &ab) != napi_ok) {
    munmap(mem, bytes);
    if (create) shm_unlink(name);
    napi_throw_error(env, "ESHM", "cannot wrap the shared-memory mapping in an ArrayBuffer");
    return NULL;
  }
  return ab;
}

// unlink(name): true if removed, false if it was already gone.
static napi_value unlink_segment(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char name[NAME_MAX_BYTES + 1];
  if (argc < 1 || !read_name(env, argv[0], name)) return NULL;
  napi_value result;
  if (shm_unlink(name) == 0) {
    napi_get_boolean(env, true, &result);
    return result;
  }
  if (errno == ENOENT) {
    napi_get_boolean(env, false, &result);
    return result;
  }
  return throw_errno(env, "cannot unlink shared-memory segment", name, errno);
}

static int view_bytes(napi_env env, napi_value v, uint8_t** data, size_t* len) {
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) {
    napi_throw_type_error(env, NULL, "expected a typed array");
    return 0;
  }
  napi_typedarray_type type;
  size_t count = 0, offset = 0;
  void* base = NULL;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &count, &base, &ab, &offset) != napi_ok) return 0;
  size_t elem = type == napi_int8_array || type == napi_uint8_array || type == napi_uint8_clamped_array ? 1
      : type == napi_int16_array || type == napi_uint16_array ? 2
      : type == napi_int32_array || type == napi_uint32_array || type == napi_float32_array ? 4 : 8;
  *data = (uint8_t*)base;  // already points at the view's first element
  *len = count * elem;
  return 1;
}

// address(view): where the view's bytes live in this process (a peer pulls from there).
// Large typed arrays are off-heap and never move.
static napi_value address_of(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t* data;
  size_t len;
  if (argc < 1 || !view_bytes(env, argv[0], &data, &len)) return NULL;
  napi_value out;
  napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)data, &out);
  return out;
}

// pull(pid, address, dest): copy dest.byteLength bytes from `address` in process `pid`
// into dest with process_vm_readv (one copy, no ring). Throws with errno on failure.
static napi_value pull(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t pid = 0;
  uint64_t remote = 0;
  bool lossless = true;
  uint8_t* data;
  size_t len;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &pid) != napi_ok || napi_get_value_bigint_uint64(env, argv[1], &remote, &lossless) != napi_ok) {
    napi_throw_type_error(env, NULL, "pull(pid: number, address: bigint, dest: TypedArray)");
    return NULL;
  }
  if (!view_bytes(env, argv[2], &data, &len)) return NULL;
  size_t done = 0;
  while (done < len) {
    struct iovec local = {data + done, len - done};
    struct iovec far = {(void*)(uintptr_t)(remote + done), len - done};
    ssize_t n = process_vm_readv(pid, &local, 1, &far, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      char what[64];
      snprintf(what, sizeof what, "pid %d", pid);
      return throw_errno(env, "cannot read the payload from", what, n < 0 ? errno : EFAULT);
    }
    done += (size_t)n;
  }
  napi_value out;
  napi_create_double(env, (double)done, &out);
  return out;
}

// The int32 at `index` of an Int32Array over shared memory, or NULL (and a thrown TypeError).
static int32_t* futex_word(napi_env env, napi_value view, napi_value index_v) {
  napi_typedarray_type type;
  size_t count = 0, offset = 0;
  void* base = NULL;
  napi_value ab;
  int32_t index = -1;
  bool is_ta = false;
  napi_is_typedarray(env, view, &is_ta);
  if (!is_ta || napi_get_typedarray_info(env, view, &type, &count, &base, &ab, &offset) != napi_ok || type != napi_int32_array) {
    napi_throw_type_error(env, NULL, "expected an Int32Array over shared memory");
    return NULL;
  }
  if (napi_get_value_int32(env, index_v, &index) != napi_ok || index < 0 || (size_t)index >= count) {
    napi_throw_range_error(env, NULL, "futex word index out of range");
    return NULL;
  }
  return (int32_t*)base + index;
}

// futexWait(i32, index, expected, timeoutMs): sleep while i32[index] == expected, at most
// timeoutMs. 0: woken (or spurious), 1: timed out, 2: the value already differed.
// Shared (not FUTEX_PRIVATE) so processes mapping the same segment wake each other.
static napi_value futex_wait(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "futexWait(i32, index, expected, timeoutMs) takes 4 arguments");
    return NULL;
  }
  int32_t* word = futex_word(env, argv[0], argv[1]);
  if (!word) return NULL;
  int32_t expected = 0;
  double ms = 0;
  napi_get_value_int32(env, argv[2], &expected);
  napi_get_value_double(env, argv[3], &ms);
  if (!(ms >= 0)) ms = 0;
  if (ms > 60000) ms = 60000;
  struct timespec ts = {(time_t)(ms / 1000), (long)((ms - 1000.0 * (double)(time_t)(ms / 1000)) * 1e6)};
  long rc = syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, NULL, 0);
  int result = rc == 0 ? 0 : errno == ETIMEDOUT ? 1 : errno == EAGAIN ? 2 : 0;  // EINTR: as woken
  napi_value out;
  napi_create_int32(env, result, &out);
  return out;
}

// futexWake(i32, index): wake every process sleeping on i32[index]; returns how many woke.
static napi_value futex_wake(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "futexWake(i32, index) takes 2 arguments");
    return NULL;
  }
  int32_t* word = futex_word(env, argv[0], argv[1]);
  if (!word) return NULL;
  long rc = syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
  napi_value out;
  napi_create_int32(env, rc < 0 ? 0 : (int32_t)rc, &out);
  return out;
}

// yieldCpu(): let another runnable thread on this core run first (sched_yield), as Open MPI
// does while it polls with more ranks than cores.
static napi_value yield_cpu(napi_env env, napi_callback_info info) {
  (void)info;
  sched_yield();
  napi_value out;
  napi_get_undefined(env, &out);
  return out;
}

// bindCpu(cpu): run the calling thread (the rank's main thread: V8's helper threads keep the
// whole mask) on that CPU only, as mpirun --bind-to core does.
static napi_value bind_cpu(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t cpu = -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &cpu) != napi_ok) {
    napi_throw_type_error(env, NULL, "bindCpu(cpu) takes a CPU number");
    return NULL;
  }
  if (cpu < 0 || cpu >= CPU_SETSIZE) {
    napi_throw_range_error(env, NULL, "CPU number out of range");
    return NULL;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    char msg[160];
    snprintf(msg, sizeof msg, "cannot bind to CPU %d: %s", cpu, strerror(errno));
    napi_throw_error(env, "EBIND", msg);
    return NULL;
  }
  napi_value out;
  napi_get_undefined(env, &out);
  return out;
}

// allowedCpus(): the CPUs the calling thread may run on, in increasing order.
static napi_value allowed_cpus(napi_env env, napi_callback_info info) {
  (void)info;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) {
    napi_throw_error(env, "EBIND", strerror(errno));
    return NULL;
  }
  napi_value out;
  napi_create_array(env, &out);
  uint32_t k = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (!CPU_ISSET(cpu, &set)) continue;
    napi_value v;
    napi_create_int32(env, cpu, &v);
    napi_set_element(env, out, k++, v);
  }
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"map", NULL, map_segment, NULL, NULL, NULL, napi_default, NULL},
    {"unlink", NULL, unlink_segment, NULL, NULL, NULL, napi_default, NULL},
    {"address", NULL, address_of, NULL, NULL, NULL, napi_default, NULL},
    {"pull", NULL, pull, NULL, NULL, NULL, napi_default, NULL},
    {"futexWait", NULL, futex_wait, NULL, NULL, NULL, napi_default, NULL},
    {"futexWake", NULL, futex_wake, NULL, NULL, NULL, napi_default, NULL},
    {"yieldCpu", NULL, yield_cpu, NULL, NULL, NULL, napi_default, NULL},
    {"bindCpu", NULL, bind_cpu, NULL, NULL, NULL, napi_default, NULL},
    {"allowedCpus", NULL, allowed_cpus, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
