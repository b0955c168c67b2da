/*
 * mpibench: the Open MPI reference for tcclbench. Same collectives, flags, sizes, iterations,
 * data, verification, table and JSON as bench/tcclbench.ts, so the two run side by side:
 *   mpirun -n 4 --mca btl self,vader bench/build/mpibench allreduce -b 8 -e 64M -f 2 -J out.json
 * Data: rank r's element at global index i is built from fmix32(seed*0x9e3779b9 + r*0x632be5ab + i)
 * exactly as bench/tcclbench/data.ts does; reductions are exact, so results compare bit for bit.
 * barrier (MPI_Barrier) moves no data: one row of size 0, in place N/A, #wrong N/A, as tcclbench.
 * --jit-warmup N: N untimed out-of-place calls at the smallest size before the sweep (tcclbench
 * needs them for V8's optimizing compiler; C needs none, but both series run the same calls).
 * Limits: MPI has no avg op and no float16/bfloat16; those are refused (exit 2).
 * Build: bench/mpi/build.sh (mpicc -O2).
 */
#include <getopt.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum coll { ALLREDUCE, REDUCE_SCATTER, ALLGATHER, ALLTOALL, BROADCAST, REDUCE, SENDRECV, BARRIER };
static const char *coll_names[] = {"allreduce", "reduce_scatter", "allgather", "alltoall", "broadcast", "reduce", "sendrecv", "barrier"};
#define NCOLL 8
enum dtype { F32, F64, I32, I8, U8, I64 };
static const char *dtype_names[] = {"float32", "float64", "int32", "int8", "uint8", "int64"};
static const int dtype_bytes[] = {4, 8, 4, 1, 1, 8};
enum op { SUM, PROD, MAX, MIN, BAND, BOR, BXOR };
static const char *op_names[] = {"sum", "prod", "max", "min", "band", "bor", "bxor"};
static const char *average_names[] = {"rank0", "avg", "min", "max"};

static int rank, nranks;
static enum coll coll;
static enum dtype dt = F32;
static enum op rop = SUM;
static int root = 0, iters = 20, warmup = 5, check = 1, average = 3;
static long jit_warmup = 0;
static size_t min_bytes = 32u << 20, max_bytes = 32u << 20, step_bytes = 1u << 20, step_factor = 1, iter_bytes = 0;
static const char *json_path = NULL, *transport = "vader";
static long dump = -1; /* --dump N: print rank's input and the expected reduction for seed 1, then exit (tests) */

static MPI_Datatype mpi_type(void) {
  switch (dt) {
    case F32: return MPI_FLOAT;
    case F64: return MPI_DOUBLE;
    case I32: return MPI_INT32_T;
    case I8: return MPI_INT8_T;
    case U8: return MPI_UINT8_T;
    default: return MPI_INT64_T;
  }
}
static MPI_Op mpi_op(void) {
  MPI_Op ops[] = {MPI_SUM, MPI_PROD, MPI_MAX, MPI_MIN, MPI_BAND, MPI_BOR, MPI_BXOR};
  return ops[rop];
}
static int reducing(void) { return coll == ALLREDUCE || coll == REDUCE_SCATTER || coll == REDUCE; }
static int rooted(void) { return coll == BROADCAST || coll == REDUCE; }

/* ---- data (mirror of bench/tcclbench/data.ts) ------------------------------------------- */

static uint32_t fmix32(uint32_t x) {
  x ^= x >> 16; x *= 0x85ebca6bu;
  x ^= x >> 13; x *= 0xc2b2ae35u;
  x ^= x >> 16;
  return x;
}
static uint32_t element_hash(uint32_t seed, uint32_t r, size_t i) { return fmix32(seed * 0x9e3779b9u + r * 0x632be5abu + (uint32_t)i); }

static int float_bits(int with_op) {
  int grows = with_op && (rop == SUM);
  int g = grows ? (int)ceil(log2((double)nranks)) : 0;
  int top = dt == F32 ? 25 : 32;
  int b = top - g;
  return b < 1 ? 1 : b;
}
static const double prod_set[] = {1, -1, 2, -2, 0.5, -0.5};

/* Store rank r's value at global index i into element k of buf. */
static void put_value(void *buf, size_t k, int with_op, uint32_t seed, int r, size_t i) {
  uint32_t h = element_hash(seed, (uint32_t)r, i);
  switch (dt) {
    case I32: ((int32_t *)buf)[k] = (int32_t)h; return;
    case I8: ((int8_t *)buf)[k] = (int8_t)(uint8_t)h; return;
    case U8: ((uint8_t *)buf)[k] = (uint8_t)h; return;
    case I64: ((int64_t *)buf)[k] = (int64_t)(((uint64_t)fmix32(h ^ 0xa5a5a5a5u) << 32) | h); return;
    default: {
      double v;
      if (with_op && rop == PROD) v = prod_set[h % 6];
      else {
        int bits = float_bits(with_op);
        v = bits >= 32 ? (double)h - 2147483648.0 : (double)(h & ((1u << bits) - 1)) - (double)(1u << (bits - 1));
      }
      if (dt == F32) ((float *)buf)[k] = (float)v; else ((double *)buf)[k] = v;
    }
  }
}

static void fill_input(void *buf, size_t count, int with_op, uint32_t seed, int r, size_t start) {
  for (size_t k = 0; k < count; k++) put_value(buf, k, with_op, seed, r, start + k);
}

/* op over ranks of global indices [start, start+count), exact: floats in double, ints wrapping. */
static void expected_reduction(void *out, size_t count, uint32_t seed, size_t start) {
  int w = dtype_bytes[dt];
  unsigned char one[8];
  for (size_t k = 0; k < count; k++) {
    double fa = 0; uint64_t ua = 0; int64_t sa = 0;
    for (int r = 0; r < nranks; r++) {
      put_value(one, 0, 1, seed, r, start + k);
      double fv = 0; uint64_t uv = 0; int64_t sv = 0;
      switch (dt) {
        case F32: fv = *(float *)one; break;
        case F64: fv = *(double *)one; break;
        case I32: sv = *(int32_t *)one; uv = (uint32_t)sv; break;
        case I8: sv = *(int8_t *)one; uv = (uint8_t)sv; break;
        case U8: sv = *(uint8_t *)one; uv = (uint8_t)sv; break;
        case I64: sv = *(int64_t *)one; uv = (uint64_t)sv; break;
      }
      if (r == 0) { fa = fv; ua = uv; sa = sv; continue; }
      switch (rop) {
        case SUM: fa += fv; ua += uv; break;
        case PROD: fa *= fv; ua *= uv; break;
        case MAX: fa = fmax(fa, fv); if (sv > sa) { sa = sv; ua = uv; } break;
        case MIN: fa = fmin(fa, fv); if (sv < sa) { sa = sv; ua = uv; } break;
        case BAND: ua &= uv; break;
        case BOR: ua |= uv; break;
        case BXOR: ua ^= uv; break;
      }
      /* keep the signed view in step with the wrapped unsigned accumulator */
      if (rop != MAX && rop != MIN) {
        switch (dt) {
          case I32: sa = (int32_t)(uint32_t)ua; break;
          case I8: sa = (int8_t)(uint8_t)ua; break;
          case U8: sa = (uint8_t)ua; break;
          case I64: sa = (int64_t)ua; break;
          default: break;
        }
      }
    }
    unsigned char *dst = (unsigned char *)out + k * w;
    switch (dt) {
      case F32: { float f = (float)fa; memcpy(dst, &f, 4); break; }
      case F64: memcpy(dst, &fa, 8); break;
      case I32: { int32_t v = (int32_t)(uint32_t)ua; memcpy(dst, &v, 4); break; }
      case I8: { int8_t v = (int8_t)(uint8_t)ua; memcpy(dst, &v, 1); break; }
      case U8: { uint8_t v = (uint8_t)ua; memcpy(dst, &v, 1); break; }
      case I64: memcpy(dst, &ua, 8); break;
    }
  }
}

static long count_wrong(const void *got, const void *want, size_t count) {
  int w = dtype_bytes[dt];
  if (memcmp(got, want, count * w) == 0) return 0;
  long wrong = 0;
  for (size_t k = 0; k < count; k++) wrong += memcmp((const char *)got + k * w, (const char *)want + k * w, w) != 0;
  return wrong;
}

/* ---- layout (mirror of bench/tcclbench/layout.ts) --------------------------------------- */

struct layout { size_t send, recv, param, size_bytes, alg_bytes; };
static struct layout layout_for(size_t bytes) {
  size_t w = dtype_bytes[dt], count = bytes / w, per = count / nranks;
  struct layout l;
  switch (coll) {
    case REDUCE_SCATTER: l.send = per * nranks; l.recv = per; l.param = per; l.alg_bytes = per * nranks * w; break;
    case ALLGATHER: l.send = per; l.recv = per * nranks; l.param = per; l.alg_bytes = per * nranks * w; break;
    case ALLTOALL: l.send = per * nranks; l.recv = per * nranks; l.param = per; l.alg_bytes = per * nranks * w; break;
    default: l.send = l.recv = l.param = count; l.alg_bytes = count * w;
  }
  l.size_bytes = (l.send > l.recv ? l.send : l.recv) * w;
  return l;
}
static double bus_factor(void) {
  switch (coll) {
    case ALLREDUCE: return 2.0 * (nranks - 1) / nranks;
    case REDUCE_SCATTER: case ALLGATHER: case ALLTOALL: return (double)(nranks - 1) / nranks;
    case BARRIER: return 0; /* moves no data: the time is the figure */
    default: return 1.0;
  }
}

/* ---- one step ------------------------------------------------------------------------- */

static char *sendbuf, *recvbuf, *expbuf;

static void call(const struct layout *l, int in_place) {
  MPI_Datatype t = mpi_type();
  size_t w = dtype_bytes[dt];
  int next = (rank + 1) % nranks, prev = (rank - 1 + nranks) % nranks;
  switch (coll) {
    case ALLREDUCE: MPI_Allreduce(in_place ? MPI_IN_PLACE : sendbuf, recvbuf, (int)l->send, t, mpi_op(), MPI_COMM_WORLD); break;
    case REDUCE_SCATTER: MPI_Reduce_scatter_block(in_place ? MPI_IN_PLACE : sendbuf, recvbuf, (int)l->param, t, mpi_op(), MPI_COMM_WORLD); break;
    case REDUCE:
      if (in_place) MPI_Reduce(rank == root ? MPI_IN_PLACE : recvbuf, rank == root ? recvbuf : NULL, (int)l->send, t, mpi_op(), root, MPI_COMM_WORLD);
      else MPI_Reduce(sendbuf, rank == root ? recvbuf : NULL, (int)l->send, t, mpi_op(), root, MPI_COMM_WORLD);
      break;
    case ALLGATHER:
      if (in_place) MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, recvbuf, (int)l->param, t, MPI_COMM_WORLD);
      else MPI_Allgather(sendbuf, (int)l->param, t, recvbuf, (int)l->param, t, MPI_COMM_WORLD);
      break;
    case ALLTOALL:
      if (in_place) MPI_Alltoall(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, recvbuf, (int)l->param, t, MPI_COMM_WORLD);
      else MPI_Alltoall(sendbuf, (int)l->param, t, recvbuf, (int)l->param, t, MPI_COMM_WORLD);
      break;
    case BROADCAST:
      /* out of place the root copies send -> recv first, as tcclbench does */
      if (!in_place && rank == root) memcpy(recvbuf, sendbuf, l->send * w);
      MPI_Bcast(recvbuf, (int)l->send, t, root, MPI_COMM_WORLD);
      break;
    case SENDRECV:
      if (in_place) MPI_Sendrecv_replace(recvbuf, (int)l->send, t, next, 7, prev, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      else MPI_Sendrecv(sendbuf, (int)l->send, t, next, 7, recvbuf, (int)l->recv, t, prev, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      break;
    case BARRIER: MPI_Barrier(MPI_COMM_WORLD); break;
  }
}

/* Write inputs for `seed`, poison outputs; return where the result will be and how long (0: none). */
static char *prepare(const struct layout *l, int in_place, uint32_t seed, size_t *result_count) {
  size_t w = dtype_bytes[dt];
  int with_op = reducing();
  size_t whole = l->send > l->recv ? l->send : l->recv;
  char *in = in_place ? recvbuf : sendbuf;
  *result_count = l->recv;
  switch (coll) {
    case ALLGATHER:
      memset(recvbuf, 0xa7, whole * w);
      fill_input(in_place ? recvbuf + rank * l->param * w : sendbuf, l->send, 0, seed, rank, 0);
      return recvbuf;
    case BROADCAST:
      if (!in_place) memset(recvbuf, 0xa7, whole * w);
      if (in_place && rank != root) memset(recvbuf, 0xa7, whole * w);
      else fill_input(in, l->send, 0, seed, rank, 0);
      return recvbuf;
    case REDUCE:
      fill_input(in, l->send, 1, seed, rank, 0);
      if (!in_place) memset(recvbuf, 0xa7, whole * w);
      if (rank != root) *result_count = 0;
      return recvbuf;
    case REDUCE_SCATTER:
      fill_input(in, l->send, 1, seed, rank, 0);
      if (!in_place) memset(recvbuf, 0xa7, l->recv * w);
      return recvbuf; /* MPI_IN_PLACE leaves the block at the start of recvbuf */
    default:
      fill_input(in, l->send, with_op, seed, rank, 0);
      if (!in_place) memset(recvbuf, 0xa7, whole * w);
      return recvbuf;
  }
}

static void expected(const struct layout *l, uint32_t seed, char *out) {
  size_t w = dtype_bytes[dt];
  int prev = (rank - 1 + nranks) % nranks;
  switch (coll) {
    case ALLREDUCE: case REDUCE: expected_reduction(out, l->recv, seed, 0); break;
    case REDUCE_SCATTER: expected_reduction(out, l->recv, seed, (size_t)rank * l->param); break;
    case ALLGATHER: for (int j = 0; j < nranks; j++) fill_input(out + j * l->param * w, l->param, 0, seed, j, 0); break;
    case ALLTOALL: for (int j = 0; j < nranks; j++) fill_input(out + j * l->param * w, l->param, 0, seed, j, (size_t)rank * l->param); break;
    case BROADCAST: fill_input(out, l->recv, 0, seed, root, 0); break;
    case SENDRECV: fill_input(out, l->recv, 0, seed, prev, 0); break;
    case BARRIER: break; /* nothing to check: a barrier is right when it returns on every rank */
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void combine(double *v, int n) {
  switch (average) {
    case 0: MPI_Bcast(v, n, MPI_DOUBLE, 0, MPI_COMM_WORLD); break;
    case 1: MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD); for (int i = 0; i < n; i++) v[i] /= nranks; break;
    case 2: MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD); break;
    default: MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD); break;
  }
}

struct placement { double time_us, median_us, algbw, busbw; long wrong; int iters; };

/* --iter-bytes: min(-n, B/size) timed iterations (>= 3), min(-w, B/size) warm-ups (>= 1), as itersFor() in args.ts. */
static void iters_for(size_t bytes, int *it, int *wu) {
  *it = iters; *wu = warmup;
  if (iter_bytes == 0) return;
  size_t fit = iter_bytes / (bytes ? bytes : 1);
  *it = (size_t)iters < (fit > 3 ? fit : 3) ? iters : (int)(fit > 3 ? fit : 3);
  *wu = (size_t)warmup < (fit > 1 ? fit : 1) ? warmup : (int)(fit > 1 ? fit : 1);
}
static uint32_t check_seed = 0;

static struct placement run_placement(size_t bytes, int in_place, double *times) {
  struct layout l = layout_for(bytes);
  size_t rc;
  int n_iters, n_warmup;
  iters_for(bytes, &n_iters, &n_warmup);
  prepare(&l, in_place, 0, &rc);
  for (int i = 0; i < n_warmup; i++) call(&l, in_place);
  MPI_Barrier(MPI_COMM_WORLD);
  double start = MPI_Wtime(), last = start;
  for (int i = 0; i < n_iters; i++) {
    call(&l, in_place);
    double now = MPI_Wtime();
    times[i] = now - last;
    last = now;
  }
  qsort(times, n_iters, sizeof(double), cmp_double);
  double med = n_iters % 2 ? times[n_iters / 2] : (times[n_iters / 2 - 1] + times[n_iters / 2]) / 2;
  double t[2] = {(last - start) / n_iters, med};
  combine(t, 2);
  struct placement p;
  p.time_us = t[0] * 1e6;
  p.median_us = t[1] * 1e6;
  p.algbw = t[0] > 0 ? (double)l.alg_bytes / 1e9 / t[0] : 0;
  p.busbw = p.algbw * bus_factor();
  p.wrong = check && coll != BARRIER ? 0 : -1;
  p.iters = n_iters;
  for (int c = 0; c < (coll == BARRIER ? 0 : check); c++) {
    uint32_t seed = ++check_seed;
    char *res = prepare(&l, in_place, seed, &rc);
    call(&l, in_place);
    long mine = 0;
    if (rc > 0) {
      expected(&l, seed, expbuf);
      mine = count_wrong(res, expbuf, rc);
    }
    long all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    p.wrong += all;
    if (all) break;
  }
  return p;
}

/* ---- command line ------------------------------------------------------------------------ */

static double parse_size(const char *s) {
  double v; char unit = 0;
  int n = sscanf(s, "%lf%c", &v, &unit);
  if (n < 1 || v < 0) return -1;
  if (n == 1) return v;
  switch (unit) {
    case 'K': case 'k': return v * 1024;
    case 'M': case 'm': return v * 1024 * 1024;
    case 'G': case 'g': return v * 1024 * 1024 * 1024;
    default: return -1;
  }
}

static int lookup(const char *s, const char **names, int n) {
  for (int i = 0; i < n; i++) if (strcmp(s, names[i]) == 0) return i;
  return -1;
}

static void usage_exit(const char *msg) {
  if (rank == 0) fprintf(stderr, "mpibench: %s\nUsage: mpirun -n N mpibench <%s|%s|%s|%s|%s|%s|%s|%s> [-b S] [-e S] [-i S] [-f F] [-n N] [-w N] [-c N] [-d T] [-o OP] [-r R] [-a 0-3] [-J FILE] [--iter-bytes S] [--jit-warmup N] [--transport LABEL]\n",
                         msg, coll_names[0], coll_names[1], coll_names[2], coll_names[3], coll_names[4], coll_names[5], coll_names[6], coll_names[7]);
  fflush(stdout); /* buffered lines written after MPI_Finalize can be lost by mpirun */
  MPI_Finalize();
  exit(2);
}

static void parse(int argc, char **argv) {
  static struct option longopts[] = {
    {"minbytes", 1, 0, 'b'}, {"maxbytes", 1, 0, 'e'}, {"stepbytes", 1, 0, 'i'}, {"stepfactor", 1, 0, 'f'},
    {"iters", 1, 0, 'n'}, {"warmup_iters", 1, 0, 'w'}, {"check", 1, 0, 'c'}, {"datatype", 1, 0, 'd'},
    {"op", 1, 0, 'o'}, {"root", 1, 0, 'r'}, {"average", 1, 0, 'a'}, {"json", 1, 0, 'J'}, {"transport", 1, 0, 't'}, {"dump", 1, 0, 'D'}, {"iter-bytes", 1, 0, 'I'}, {"jit-warmup", 1, 0, 'W'}, {0, 0, 0, 0}};
  int c;
  double s;
  while ((c = getopt_long(argc, argv, "b:e:i:f:n:w:c:d:o:r:a:J:t:", longopts, NULL)) != -1) {
    switch (c) {
      case 'b': if ((s = parse_size(optarg)) < 0) usage_exit("bad -b"); min_bytes = (size_t)s; break;
      case 'e': if ((s = parse_size(optarg)) < 0) usage_exit("bad -e"); max_bytes = (size_t)s; break;
      case 'i': if ((s = parse_size(optarg)) < 0) usage_exit("bad -i"); step_bytes = (size_t)s; break;
      case 'f': step_factor = strtoul(optarg, NULL, 10); if (step_factor < 1) usage_exit("bad -f"); break;
      case 'n': iters = atoi(optarg); if (iters < 1) usage_exit("bad -n"); break;
      case 'w': warmup = atoi(optarg); break;
      case 'c': check = atoi(optarg); break;
      case 'd': {
        const char *d = strcmp(optarg, "float") == 0 ? "float32" : strcmp(optarg, "double") == 0 ? "float64" : strcmp(optarg, "int") == 0 ? "int32" : optarg;
        int k = lookup(d, dtype_names, 6);
        if (k < 0) usage_exit("datatype must be float32, float64, int32, int8, uint8 or int64 (MPI has no float16/bfloat16)");
        dt = (enum dtype)k;
        break;
      }
      case 'o': {
        int k = lookup(optarg, op_names, 7);
        if (k < 0) usage_exit("op must be sum, prod, max, min, band, bor or bxor (MPI has no avg)");
        rop = (enum op)k;
        break;
      }
      case 'r': root = atoi(optarg); break;
      case 'a': average = atoi(optarg); if (average < 0 || average > 3) usage_exit("-a must be 0..3"); break;
      case 'J': json_path = optarg; break;
      case 't': transport = optarg; break;
      case 'D': dump = atol(optarg); break;
      case 'I': if ((s = parse_size(optarg)) < 0) usage_exit("bad --iter-bytes"); iter_bytes = (size_t)s; break;
      case 'W': {
        char *end;
        jit_warmup = strtol(optarg, &end, 10);
        if (!*optarg || *end || jit_warmup < 0 || optarg[0] == '-' || optarg[0] == '+') usage_exit("--jit-warmup must be an integer >= 0");
        break;
      }
      default: usage_exit("unknown option");
    }
  }
  if (optind >= argc) usage_exit("missing the collective");
  int k = lookup(argv[optind], coll_names, NCOLL);
  if (k < 0) usage_exit("unknown collective");
  coll = (enum coll)k;
  if (rooted() && (root < 0 || root >= nranks)) usage_exit("-r is not a rank of this job");
  if (reducing() && rop >= BAND && (dt == F32 || dt == F64)) usage_exit("band/bor/bxor need an integer datatype");
  if (max_bytes < min_bytes) usage_exit("-e is smaller than -b");
  if (coll == BARRIER) { min_bytes = max_bytes = 0; dt = F32; } /* one size-0 row whatever -b/-e/-d say */
}

/* ---- main ------------------------------------------------------------------------------- */

struct row { size_t size, count; struct placement out, in; };

static void print_time(double us) {
  if (us >= 10000) printf("  %7.0f", us);
  else if (us >= 100) printf("  %7.1f", us);
  else printf("  %7.2f", us);
}
static void print_placement(const struct placement *p) {
  if (!p) { printf("  %7s  %6s  %6s  %6s", "N/A", "N/A", "N/A", "N/A"); return; } /* no in-place form (barrier) */
  print_time(p->time_us);
  printf("  %6.2f  %6.2f", p->algbw, p->busbw);
  if (p->wrong < 0) printf("  %6s", "N/A"); else printf("  %6ld", p->wrong);
}

static void json_placement(FILE *f, const struct placement *p) {
  if (!p) { fprintf(f, "null"); return; }
  fprintf(f, "{\"timeUs\": %.17g, \"medianUs\": %.17g, \"algbw\": %.17g, \"busbw\": %.17g, \"iters\": %d, \"wrong\": ", p->time_us, p->median_us, p->algbw, p->busbw, p->iters);
  if (p->wrong < 0) fprintf(f, "null}"); else fprintf(f, "%ld}", p->wrong);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  parse(argc, argv);

  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int vlen;
  MPI_Get_library_version(version, &vlen);
  char *nl = strchr(version, ','); if (nl) *nl = 0;
  char host[256] = "";
  gethostname(host, sizeof host - 1);

  if (dump >= 0) {
    /* The data contract with bench/tcclbench/data.ts, checked by test/bench/mpibench.test.ts. */
    size_t n = (size_t)dump, w = dtype_bytes[dt];
    unsigned char *in = malloc(n * w + 1), *ex = malloc(n * w + 1);
    fill_input(in, n, reducing(), 1, rank, 0);
    expected_reduction(ex, n, 1, 0);
    /* Rank 0 prints every rank's line: output of several ranks racing to exit can be lost by mpirun. */
    unsigned char *all = rank == 0 ? malloc(n * w * nranks + 1) : NULL;
    MPI_Gather(in, (int)(n * w), MPI_BYTE, all, (int)(n * w), MPI_BYTE, 0, MPI_COMM_WORLD);
    for (int r = 0; rank == 0 && r < nranks; r++) {
      printf("DUMP %d input ", r);
      for (size_t k = 0; k < n * w; k++) printf("%02x", all[r * n * w + k]);
      printf(" expected ");
      for (size_t k = 0; k < n * w; k++) printf("%02x", ex[k]);
      printf("\n");
    }
    free(all); free(in); free(ex);
    fflush(stdout); /* buffered lines written after MPI_Finalize can be lost by mpirun */
    MPI_Finalize();
    return 0;
  }

  size_t elems = max_bytes / dtype_bytes[dt];
  size_t alloc = (elems ? elems : 1) * dtype_bytes[dt];
  sendbuf = malloc(alloc); recvbuf = malloc(alloc); expbuf = malloc(alloc);
  double *times = malloc(sizeof(double) * iters);
  if (!sendbuf || !recvbuf || !expbuf || !times) { fprintf(stderr, "mpibench: out of memory\n"); MPI_Abort(MPI_COMM_WORLD, 1); }

  int pids[4096] = {0}, pid = (int)getpid();
  if (nranks <= 4096) MPI_Gather(&pid, 1, MPI_INT, pids, 1, MPI_INT, 0, MPI_COMM_WORLD);
  const char *redop = reducing() ? op_names[rop] : "none";
  int root_col = rooted() ? root : -1;
  if (rank == 0) {
    printf("# mpibench %s: %s, btl %s, nranks %d\n", coll_names[coll], version, transport, nranks);
    if (step_factor > 1) printf("# minBytes %zu maxBytes %zu step: %zu(factor)", min_bytes, max_bytes, step_factor);
    else printf("# minBytes %zu maxBytes %zu step: %zu(bytes)", min_bytes, max_bytes, step_bytes);
    printf(" warmup iters: %d iters: %d validation: %d average: %s", warmup, iters, check, average_names[average]);
    if (iter_bytes) printf(" iter-bytes: %zu", iter_bytes);
    if (jit_warmup) printf(" jit-warmup: %ld", jit_warmup);
    printf("\n#\n");
    for (int r = 0; r < nranks && r < 4096; r++) printf("#  Rank %2d Pid %7d on %s\n", r, pids[r], host);
    printf("#\n");
    printf("# %10s  %12s  %8s  %6s  %6s  %-31s  %-31s\n", "", "", "", "", "", "           out-of-place", "           in-place");
    printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s\n", "size", "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw", "busbw", "#wrong");
    printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s\n", "(B)", "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "");
    fflush(stdout);
  }

  struct row *rows = NULL;
  size_t nrows = 0, cap = 0;
  long total_wrong = 0;
  double bw_sum = 0;
  const int in_col = coll != BARRIER; /* a barrier has no in-place form: its column is N/A */
  const char *type_col = coll == BARRIER ? "none" : dtype_names[dt];
  if (jit_warmup > 0) {
    /* tcclbench's --jit-warmup: untimed, unchecked, out of place, at the smallest size */
    struct layout l = layout_for(min_bytes);
    size_t rc;
    prepare(&l, 0, 0, &rc);
    for (long i = 0; i < jit_warmup; i++) call(&l, 0);
  }
  for (size_t size = min_bytes; size <= max_bytes; size = step_factor > 1 ? size * step_factor : size + step_bytes) {
    struct layout l = layout_for(size);
    struct row r = {l.size_bytes, l.param, run_placement(size, 0, times), {0, 0, 0, 0, -1, 0}};
    if (in_col) r.in = run_placement(size, 1, times);
    if (nrows == cap) { cap = cap ? 2 * cap : 64; rows = realloc(rows, cap * sizeof *rows); }
    rows[nrows++] = r;
    if (r.out.wrong > 0) total_wrong += r.out.wrong;
    if (r.in.wrong > 0) total_wrong += r.in.wrong;
    bw_sum += r.out.busbw + (in_col ? r.in.busbw : 0);
    if (rank == 0) {
      printf("  %10zu  %12zu  %8s  %6s  %6d", r.size, r.count, type_col, redop, root_col);
      print_placement(&r.out);
      print_placement(in_col ? &r.in : NULL);
      printf("\n");
      fflush(stdout);
    }
    if (step_factor == 1 && step_bytes == 0) break;
    if (step_factor > 1 && size == 0) break;
  }
  double avg_bw = nrows ? bw_sum / ((in_col ? 2.0 : 1.0) * nrows) : 0;
  if (rank == 0) {
    printf("# Out of bounds values : %ld %s\n# Avg bus bandwidth    : %g\n#\n", total_wrong, total_wrong ? "FAILED" : "OK", avg_bw);
    if (json_path) {
      FILE *f = fopen(json_path, "w");
      if (!f) { perror(json_path); MPI_Abort(MPI_COMM_WORLD, 1); }
      char date[64];
      time_t now = time(NULL);
      strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
      fprintf(f, "{\n \"tool\": \"mpibench\",\n \"implementation\": \"openmpi\",\n \"version\": \"%s\",\n \"transport\": \"%s\",\n", version, transport);
      fprintf(f, " \"collective\": \"%s\",\n \"nranks\": %d,\n \"iters\": %d,\n \"warmup\": %d,\n \"check\": %d,\n \"average\": \"%s\",\n \"iterBytes\": %zu,\n", coll_names[coll], nranks, iters, warmup, check, average_names[average], iter_bytes);
      if (jit_warmup) fprintf(f, " \"jitWarmup\": %ld,\n", jit_warmup);
      fprintf(f, " \"minBytes\": %zu,\n \"maxBytes\": %zu,\n \"stepBytes\": %zu,\n \"stepFactor\": %zu,\n \"host\": \"%s\",\n \"date\": \"%s\",\n \"results\": [\n", min_bytes, max_bytes, step_bytes, step_factor, host, date);
      for (size_t i = 0; i < nrows; i++) {
        fprintf(f, "  {\"size\": %zu, \"count\": %zu, \"type\": \"%s\", \"redop\": \"%s\", \"root\": %d, \"outOfPlace\": ", rows[i].size, rows[i].count, type_col, redop, root_col);
        json_placement(f, &rows[i].out);
        fprintf(f, ", \"inPlace\": ");
        json_placement(f, in_col ? &rows[i].in : NULL);
        fprintf(f, "}%s\n", i + 1 < nrows ? "," : "");
      }
      fprintf(f, " ],\n \"avgBusbw\": %.17g,\n \"wrong\": ", avg_bw);
      if (check && coll != BARRIER) fprintf(f, "%ld\n}\n", total_wrong); else fprintf(f, "null\n}\n");
      fclose(f);
    }
  }
  free(rows); free(sendbuf); free(recvbuf); free(expbuf); free(times);
  fflush(stdout); /* buffered lines written after MPI_Finalize can be lost by mpirun */
  MPI_Finalize();
  return total_wrong ? 1 : 0;
}
