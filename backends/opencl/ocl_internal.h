/* Internal declarations of the OpenCL backend module (never installed). */
#ifndef HETRUN_OCL_INTERNAL_H
#define HETRUN_OCL_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include <CL/cl.h>

#include "hetrun/backend.h"

/** Storage dtypes the kernels are instantiated for, in program order. */
enum { HR_DT_F32 = 0, HR_DT_F16 = 1, HR_DT_BF16 = 2, HR_DT_F64 = 3, HR_DT_COUNT = 4 };

/** Kernel bases; the kernel name is "<base>_<dtype suffix>". */
enum {
    HR_K_FILL,
    HR_K_SCALE,
    HR_K_AXPY,
    HR_K_MUL,
    HR_K_BIAS_ADD,
    HR_K_ACT_FWD,
    HR_K_ACT_BWD,
    HR_K_XENT_BWD,
    HR_K_SGD,
    HR_K_ADAMW,
    HR_K_CAST_TO_F32,
    HR_K_CAST_FROM_F32,
    HR_K_SOFTMAX,
    HR_K_XENT_FWD,
    HR_K_LAYERNORM,
    HR_K_REDUCE0,
    HR_K_REDUCE1,
    HR_K_GEMM_PACK_A,
    HR_K_GEMM_PACK_B,
    HR_K_GEMM_MICRO,
    HR_K_LN_BWD_DX, /* kernels/opencl/transformer.cl from here */
    HR_K_LN_BWD_DGB,
    HR_K_SOFTMAX_BWD,
    HR_K_EMB_FWD,
    HR_K_EMB_BWD,
    HR_K_NONFINITE_PART,
    HR_K_SUMSQ_PART,
    HR_K_SUMSQ_FINAL,
    HR_K_ATT_FWD, /* kernels/opencl/attention.cl: fp32, fp16, bf16 only */
    HR_K_ATT_DELTA,
    HR_K_ATT_DQ,
    HR_K_ATT_DKV,
    HR_K_BASE_COUNT
};
/** Kernels not instantiated per dtype (gemm_int8.cl, index.cl); id = HR_K_SINGLE + s. */
enum { HR_S_GEMM_I8, HR_S_EMB_SORT, HR_S_NONFINITE_FINAL, HR_S_COUNT };
#define HR_K_SINGLE (HR_K_BASE_COUNT * HR_DT_COUNT)
#define HR_K_COUNT (HR_K_SINGLE + HR_S_COUNT)

/** Static facts about one enumerated device, gathered at init. */
typedef struct ocl_devrec {
    cl_platform_id platform;
    cl_device_id id;
    hetrun_device_info info;
    cl_device_type type;
    size_t max_wg;
    cl_ulong local_mem; /* CL_DEVICE_LOCAL_MEM_SIZE: bounds the attention tiles */
    cl_uint base_align_bits;
    int has_fp64; /* cl_khr_fp64: the f64 kernels are compiled and offered */
    int open;     /* 1 while a handle exists (one handle per index per process) */
} ocl_devrec;

struct hetrun_device {
    int index;
    ocl_devrec *rec;
    cl_context ctx;
    cl_program prog; /* built at first use, under `lock` */
    pthread_mutex_t lock;
    int mr, nr; /* GEMM register block, chosen per device */
    size_t wg;  /* 1-D work-group size for elementwise/row kernels */
    uint64_t mem_in_use, mem_peak;
};

struct hetrun_buffer {
    hetrun_device *dev;
    cl_mem mem;
    uint64_t bytes;
};

struct hetrun_queue {
    hetrun_device *dev;
    cl_command_queue q;
    cl_kernel k[HR_K_COUNT]; /* per queue: clSetKernelArg is not thread-safe */
    size_t kwg[HR_K_COUNT];  /* 1-D work-group size per kernel: min(dev->wg, kernel limit) */
    cl_mem scratch;          /* GEMM packing panels; reused in queue order */
    uint64_t scratch_bytes;
};

struct hetrun_event {
    hetrun_device *dev;
    cl_event ev;
};

/* ---- ocl_util.c ---- */
/** Host services given to init (NULL before init). */
extern const hetrun_host_services *ocl_host;
/** OpenCL error code -> its name, e.g. "CL_INVALID_WORK_GROUP_SIZE". */
const char *ocl_err_name(cl_int err);
/** Sets the thread's last error text (printf format) and returns `st`. */
hetrun_status ocl_fail(hetrun_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Status for a failed cl* call: NO_MEMORY for allocation failures, else DEVICE. */
hetrun_status ocl_status_of(cl_int err);
/** Log one line through host->log when its level is enabled. */
void ocl_log(hetrun_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** The calling thread's last error text. */
const char *ocl_last_error(void);
/** 64-bit FNV-1a of `len` bytes, continuing from `h` (start with OCL_FNV_INIT). */
uint64_t ocl_fnv1a(uint64_t h, const void *data, size_t len);
#define OCL_FNV_INIT 0xcbf29ce484222325ull

/* ---- ocl_program.c ---- */
/** Builds (or loads from the disk cache) the device's program; idempotent, locked. */
hetrun_status ocl_program_get(hetrun_device *dev);
/** The kernel `id` for queue `q`, created on first use. */
hetrun_status ocl_kernel_get(hetrun_queue *q, int id, cl_kernel *out);
/** "<base>_<suffix>" name of kernel `id` (static storage). */
const char *ocl_kernel_name(int id, char *buf, size_t len);

/* ---- ocl_ops.c ---- */
/** Storage dtype -> kernel instantiation index (HR_DT_*), or -1 when there is none. */
int ocl_dt_index(uint32_t dtype);
/** Names for messages: the op kind and a dtype ("?" when unknown). */
const char *ocl_opname(const hetrun_op_desc *d);
const char *ocl_dtname(uint32_t dtype);

/** Kernel argument builder: sets arguments in order, remembers the first failure. */
typedef struct ocl_kargs {
    cl_kernel k;
    cl_uint n;
    cl_int err;
    cl_uint bad;
} ocl_kargs;
void ka_mem(ocl_kargs *a, cl_mem m);
void ka_u64(ocl_kargs *a, uint64_t v);
void ka_i64(ocl_kargs *a, int64_t v);
void ka_i32(ocl_kargs *a, int64_t v);
void ka_f32(ocl_kargs *a, double v);
/** A real scalar in the kernel's compute type: double for f64 kernels, else float. */
void ka_real(ocl_kargs *a, int f64, double v);
/** Operand as cl_mem + element offset (`esize` bytes per element); NULL buffer -> NULL. */
void ka_t(ocl_kargs *a, const hetrun_tensor *t, size_t esize);
/** `bytes` of __local memory (a NULL-valued argument). */
void ka_local(ocl_kargs *a, size_t bytes);
/** Enqueues kernel `id` with the arguments in `a` over `dims` global/local sizes (lsz NULL:
 *  runtime-chosen); the error names kernel, op, shape and sizes. */
hetrun_status ocl_launch(hetrun_queue *q, ocl_kargs *a, int id, const hetrun_op_desc *d,
                         cl_uint dims, const size_t *gsz, const size_t *lsz);
/** 1-D launch over `n` items in groups of the kernel's work-group size (kernels bounds-check). */
hetrun_status ocl_launch1(hetrun_queue *q, ocl_kargs *a, int id, const hetrun_op_desc *d,
                          uint64_t n);
/** Grows the queue's scratch (GEMM panels, reduction partials, attention row sums,
 *  embedding grouping) to at least `bytes`; it is reused in queue order. */
hetrun_status ocl_scratch(hetrun_queue *q, uint64_t bytes);

/* ---- ocl_transformer.c: the ABI 1.1 ops other than GEMM ---- */
/** Backend limits beyond the catalogue (sizes, local memory) for ops 18-26. */
hetrun_status ocl_transformer_supported(hetrun_device *dev, const hetrun_op_desc *d);
/** Runs an op of kind >= LAYERNORM_FORWARD or ATTENTION_*; operands already checked. */
hetrun_status ocl_transformer_run(hetrun_queue *q, const hetrun_op_desc *d, const hetrun_tensor *t);

hetrun_status ocl_op_supported(hetrun_device *dev, const hetrun_op_desc *desc);
hetrun_status ocl_op_workspace_size(hetrun_device *dev, const hetrun_op_desc *desc,
                                    uint64_t *bytes);
hetrun_status ocl_op_run(hetrun_queue *q, const hetrun_op_desc *desc, const hetrun_tensor *args,
                         int32_t nargs, hetrun_tensor workspace);

#endif
