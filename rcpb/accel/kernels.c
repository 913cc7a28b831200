/*
 * CPU kernels of the training step (rcpb/models/kernels.py builds this file on first use and
 * calls it through ctypes):
 *   - training-mode BatchNorm, alone or followed by ReLU, forward and backward
 *     (rcpb/models/bn_relu.py);
 *   - non-overlapping average pooling, forward and backward (rcpb/models/readout.py);
 *   - 3x3 convolutions with padding 1 by Winograd's F(2x2, 3x3): forward pass, input gradient
 *     and weight gradient (rcpb/models/conv3x3.py).
 * All work on channels-last float32 feature maps.
 *
 * BN + ReLU: every array is a channels-last feature map viewed as [rows, width] floats, row-major:
 * a row holds the channels of width / C consecutive pixels, and per-column parameters are
 * the per-channel ones repeated width / C times. The rows are split into `nthreads` equal
 * chunks (the last one shorter), one OpenMP thread each; reductions write one row of per-column
 * double sums per chunk ([nthreads, width]), which the caller adds in a fixed order, so the
 * results depend on the thread count but not on thread timing. BN's output is clamped below at
 * `lower`: 0 gives ReLU(BN(u)), -INFINITY gives BN(u) alone.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__FMA__)
#include <immintrin.h>
#endif

#define MAX_THREADS 64

typedef struct {
    const float *g, *u;        /* [rows, width]: incoming gradient, BN input */
    const float *p0, *p1, *p2, *p3, *p4; /* [width]: per-column parameters */
    float *out;                /* [rows, width] */
    float lower;               /* lower clamp of BN's output: 0 (ReLU) or -INFINITY (none) */
    double *acc0, *acc1;       /* [chunks, width]: per-chunk column sums */
    long rows, width;
} args_t;

typedef void (*range_fn)(const args_t *, long chunk, long r0, long r1);

/* Chunk c of n covers rows [c * step, min((c + 1) * step, rows)), step = ceil(rows / n).
 * With OpenMP the chunks run on the threads of the OpenMP runtime already in the process
 * (PyTorch's: the library has the same name, so the loader shares it, and its threads are
 * the ones PyTorch's own ops use); without, one after the other. */
/* Row r0 of chunk t when `rows` rows are split into chunks of `step` (clipped to rows). */
static long chunk_start(long t, long step, long rows) { return t * step < rows ? t * step : rows; }

static void run(range_fn fn, const args_t *args, int nthreads) {
    long step = (args->rows + nthreads - 1) / nthreads;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nthreads) schedule(static, 1)
#endif
    for (int t = 0; t < nthreads; t++) {
        fn(args, t, chunk_start(t, step, args->rows), chunk_start(t + 1, step, args->rows));
    }
}

/* BN's output before the ReLU; the forward and backward passes both compute it with this one
 * function, so they agree bit for bit on which values the ReLU passed */
static inline float affine(float u, float scale, float shift) { return u * scale + shift; }

/* g where the clamp passed its input (affine > lower), else 0, without a branch so that loops
 * vectorise */
static inline float passed_grad(float g, float u, float scale, float shift, float lower) {
    uint32_t bits;
    memcpy(&bits, &g, sizeof bits);
    bits &= -(uint32_t)(affine(u, scale, shift) > lower);
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

/* acc0 = sum of u, acc1 = sum of u^2 per column */
static void stats_range(const args_t *a, long chunk, long r0, long r1) {
    const long w = a->width;
    double *restrict s = a->acc0 + chunk * w, *restrict q = a->acc1 + chunk * w;
    for (long j = 0; j < w; j++) s[j] = q[j] = 0.0;
    for (long i = r0; i < r1; i++) {
        const float *restrict u = a->u + i * w;
        for (long j = 0; j < w; j++) {
            double v = u[j];
            s[j] += v;
            q[j] += v * v;
        }
    }
}

/* out = max(u * scale + shift, lower); p0 = scale, p1 = shift */
static void forward_range(const args_t *a, long chunk, long r0, long r1) {
    (void)chunk;
    const long w = a->width;
    const float lower = a->lower;
    const float *restrict scale = a->p0, *restrict shift = a->p1;
    for (long i = r0; i < r1; i++) {
        const float *restrict u = a->u + i * w;
        float *restrict out = a->out + i * w;
        for (long j = 0; j < w; j++) {
            float v = affine(u[j], scale[j], shift[j]);
            out[j] = v > lower ? v : lower;
        }
    }
}

/* with m = passed_grad(g, u, scale, shift, lower): acc0 = sum of m, acc1 = sum of m * u per
 * column; p0 = scale, p1 = shift (the forward pass's) */
static void backward_sums_range(const args_t *a, long chunk, long r0, long r1) {
    const long w = a->width;
    const float lower = a->lower;
    const float *restrict scale = a->p0, *restrict shift = a->p1;
    double *restrict s = a->acc0 + chunk * w, *restrict q = a->acc1 + chunk * w;
    for (long j = 0; j < w; j++) s[j] = q[j] = 0.0;
    for (long i = r0; i < r1; i++) {
        const float *restrict g = a->g + i * w, *restrict u = a->u + i * w;
        for (long j = 0; j < w; j++) {
            double m = passed_grad(g[j], u[j], scale[j], shift[j], lower);
            s[j] += m;
            q[j] += m * u[j];
        }
    }
}

/* out = passed_grad(g, u, scale, shift, lower) * k + u * b + c; p0 = scale, p1 = shift, p2 = k,
 * p3 = b, p4 = c */
static void backward_input_range(const args_t *a, long chunk, long r0, long r1) {
    (void)chunk;
    const long w = a->width;
    const float lower = a->lower;
    const float *restrict scale = a->p0, *restrict shift = a->p1, *restrict k = a->p2,
                          *restrict b = a->p3, *restrict c = a->p4;
    for (long i = r0; i < r1; i++) {
        const float *restrict g = a->g + i * w, *restrict u = a->u + i * w;
        float *restrict out = a->out + i * w;
        for (long j = 0; j < w; j++)
            out[j] = passed_grad(g[j], u[j], scale[j], shift[j], lower) * k[j] + u[j] * b[j] + c[j];
    }
}

static int clamp_threads(int nthreads, long rows) {
    if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
    if (nthreads > rows) nthreads = (int)rows;
    return nthreads < 1 ? 1 : nthreads;
}

/* The number of chunks (and rows of the sums) that the functions below use. */
int rcpb_bn_relu_chunks(int nthreads, long rows) { return clamp_threads(nthreads, rows); }

void rcpb_bn_relu_stats(const float *u, long rows, long width, double *sum, double *sumsq,
                        int nthreads) {
    args_t a = {.u = u, .acc0 = sum, .acc1 = sumsq, .rows = rows, .width = width};
    run(stats_range, &a, clamp_threads(nthreads, rows));
}

void rcpb_bn_relu_forward(const float *u, long rows, long width, const float *scale,
                          const float *shift, float lower, float *out, int nthreads) {
    args_t a = {.u = u, .p0 = scale, .p1 = shift, .out = out, .lower = lower, .rows = rows,
                .width = width};
    run(forward_range, &a, clamp_threads(nthreads, rows));
}

void rcpb_bn_relu_backward_sums(const float *g, const float *u, long rows, long width,
                                const float *scale, const float *shift, float lower,
                                double *sum_g, double *sum_gu, int nthreads) {
    args_t a = {.g = g, .u = u, .p0 = scale, .p1 = shift, .lower = lower, .acc0 = sum_g,
                .acc1 = sum_gu, .rows = rows, .width = width};
    run(backward_sums_range, &a, clamp_threads(nthreads, rows));
}

void rcpb_bn_relu_backward_input(const float *g, const float *u, long rows, long width,
                                 const float *scale, const float *shift, float lower,
                                 const float *k, const float *b, const float *c, float *out,
                                 int nthreads) {
    args_t a = {.g = g, .u = u, .p0 = scale, .p1 = shift, .lower = lower, .p2 = k, .p3 = b,
                .p4 = c, .out = out, .rows = rows, .width = width};
    run(backward_input_range, &a, clamp_threads(nthreads, rows));
}

/* ------------------------------------------------------------------ average pooling
 * Windows of k x k pixels with stride k (no overlap); the last window of a row or column is
 * clipped to the map and averages only the pixels it covers (PyTorch's avg_pool2d with
 * ceil_mode=True, no padding). Maps are channels-last: h [batch, size, size, channels],
 * pooled [batch, n, n, channels], n = ceil(size / k). Parallel over the batch; every value
 * is summed in a fixed order, so results do not depend on the thread count. */

static long window_count(long i, long k, long size) {
    long left = size - i * k;
    return left < k ? left : k;
}

/* For each window row i: sum the window's image rows into one row buffer (long contiguous
 * loops), then add up each window's columns of that buffer. */
void rcpb_avg_pool_forward(const float *h, long batch, long size, long channels, long k,
                           float *pooled, int nthreads) {
    const long n = (size + k - 1) / k, row = size * channels;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nthreads) schedule(static)
#endif
    for (long b = 0; b < batch; b++) {
        float *restrict rowsum = malloc(row * sizeof(float));
        if (rowsum == NULL) abort(); /* a few kB: nothing sensible is left to do */
        for (long i = 0; i < n; i++) {
            const long rows = window_count(i, k, size);
            const float *restrict in = h + (b * size + i * k) * row;
            for (long x = 0; x < row; x++) rowsum[x] = in[x];
            for (long p = 1; p < rows; p++)
                for (long x = 0; x < row; x++) rowsum[x] += in[p * row + x];
            for (long j = 0; j < n; j++) {
                const long cols = window_count(j, k, size);
                const float scale = 1.0f / (float)(rows * cols);
                const float *restrict src = rowsum + j * k * channels;
                float *restrict out = pooled + ((b * n + i) * n + j) * channels;
                for (long c = 0; c < channels; c++) {
                    float total = src[c];
                    for (long q = 1; q < cols; q++) total += src[q * channels + c];
                    out[c] = total * scale;
                }
            }
        }
        free(rowsum);
    }
    (void)nthreads;
}

/* grad_h[b, p, q, c] = grad_pooled[b, p / k, q / k, c] / (pixels in that window): one image row
 * is built per window row and copied to the window's image rows. */
void rcpb_avg_pool_backward(const float *grad_pooled, long batch, long size, long channels,
                            long k, float *grad_h, int nthreads) {
    const long n = (size + k - 1) / k, row = size * channels;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nthreads) schedule(static)
#endif
    for (long b = 0; b < batch; b++) {
        for (long i = 0; i < n; i++) {
            const long rows = window_count(i, k, size);
            float *restrict first = grad_h + (b * size + i * k) * row;
            for (long q = 0; q < size; q++) {
                const long j = q / k;
                const float scale = 1.0f / (float)(rows * window_count(j, k, size));
                const float *restrict in = grad_pooled + ((b * n + i) * n + j) * channels;
                for (long c = 0; c < channels; c++) first[q * channels + c] = in[c] * scale;
            }
            for (long p = 1; p < rows; p++) memcpy(first + p * row, first, row * sizeof(float));
        }
    }
    (void)nthreads;
}

/* ------------------------------------------------------------------ 3x3 convolutions
 * Vectors of 8 floats (GCC/clang vector extensions; AVX2 registers with -march=native on
 * x86-64, pairs of SSE registers without), multiply-adds fused where the CPU has FMA. */

#if defined(__GNUC__) && !defined(__clang__)
/* without AVX, GCC notes that 32-byte vectors are passed differently: these functions are
 * static and inlined, so no call crosses an ABI boundary */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float vec8 __attribute__((vector_size(32)));
typedef float vec8_unaligned __attribute__((vector_size(32), aligned(4), may_alias));

static inline vec8 load8(const float *p) { return *(const vec8_unaligned *)p; }
static inline void store8(float *p, vec8 v) { *(vec8_unaligned *)p = v; }
static inline vec8 splat8(float s) { return (vec8){s, s, s, s, s, s, s, s}; }
#if defined(__FMA__)
static inline vec8 madd8(vec8 a, vec8 b, vec8 c) {
    return (vec8)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
}
#else
static inline vec8 madd8(vec8 a, vec8 b, vec8 c) { return a * b + c; }
#endif

/* ------------------------------------------------------------------ 3x3 convolution (Winograd)
 * out = conv2d(x, w, stride 1, padding 1) for x [batch, height, width, cin] and out
 * [batch, height, width, cout] (channels-last), by Winograd's minimal filtering F(2x2, 3x3)
 * (Lavin & Gray 2016): each 2x2 block of outputs ("tile") is
 *
 *     Y = A^T [ sum over i of (G w[o, i] G^T) * (B^T d[i] B) ] A
 *
 * with d[i] the 4x4 input patch of channel i around the tile (zeros outside the map) and *
 * elementwise. The 16 elementwise products become 16 matrix products [tiles, cin] x [cin, cout],
 * 2.25 times fewer multiply-adds than the direct convolution. The caller passes the transformed
 * weights u = G w G^T as [16, cin, cout] (computed in PyTorch). The same code computes the input
 * gradient of a conv, as the convolution of the output gradient with the transposed, flipped
 * weights.
 *
 * Work: rows of tiles (b, tile row) split into `nthreads` equal chunks; a chunk goes along its
 * rows in blocks of up to TILES tiles: input transform of the block into v [16, TILES, cin],
 * the 16 products into m [16, TILES, cout], output transform into out. cin and cout must be
 * multiples of 8 (the caller checks). Each output is computed by one thread in a fixed order:
 * results do not depend on the thread count. */

#define TILES 6

/* m[t, k0 .. k0 + 8 * KV) = sum over c of v[t, c] * u[c, k0 ..] for t < NT */
static inline __attribute__((always_inline)) void
wino_product(int NT, int KV, const float *restrict v, const float *restrict u, long cin,
             long cout, long k0, float *restrict m) {
    vec8 a[TILES][2];
    for (int t = 0; t < NT; t++)
        for (int j = 0; j < KV; j++) a[t][j] = splat8(0.0f);
    for (long c = 0; c < cin; c++) {
        vec8 uv[2];
        for (int j = 0; j < KV; j++) uv[j] = load8(u + c * cout + k0 + 8 * j);
        for (int t = 0; t < NT; t++) {
            vec8 b = splat8(v[t * cin + c]);
            for (int j = 0; j < KV; j++) a[t][j] = madd8(b, uv[j], a[t][j]);
        }
    }
    for (int t = 0; t < NT; t++)
        for (int j = 0; j < KV; j++) store8(m + t * cout + k0 + 8 * j, a[t][j]);
}

/* The 16 products of a block of NT tiles. */
static inline __attribute__((always_inline)) void
wino_products(int NT, const float *v, const float *u, long cin, long cout, float *m) {
    for (int e = 0; e < 16; e++) {
        const float *ve = v + e * TILES * cin, *ue = u + e * cin * cout;
        float *me = m + e * TILES * cout;
        long k = 0;
        for (; k + 16 <= cout; k += 16) wino_product(NT, 2, ve, ue, cin, cout, k, me);
        for (; k + 8 <= cout; k += 8) wino_product(NT, 1, ve, ue, cin, cout, k, me);
    }
}

/* v[e, t, c .. c + 8) = (B^T d B)[e] for the 4x4 patch d of tile t, channels c .. c + 8;
 * v holds `stride` tiles per e. */
static void wino_input(const float *x, long b, long height, long width, long cin, long ty,
                       long tx, int t, long stride, float *v) {
    const long y0 = 2 * ty - 1, x0 = 2 * tx - 1;
    const int inside = y0 >= 0 && y0 + 3 < height && x0 >= 0 && x0 + 3 < width;
    for (long c = 0; c < cin; c += 8) {
        vec8 d[4][4], r[4][4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                const long yy = y0 + i, xx = x0 + j;
                d[i][j] = (inside || (yy >= 0 && yy < height && xx >= 0 && xx < width))
                              ? load8(x + ((b * height + yy) * width + xx) * cin + c)
                              : splat8(0.0f);
            }
        for (int j = 0; j < 4; j++) {          /* B^T d: rows */
            r[0][j] = d[0][j] - d[2][j];
            r[1][j] = d[1][j] + d[2][j];
            r[2][j] = d[2][j] - d[1][j];
            r[3][j] = d[1][j] - d[3][j];
        }
        for (int i = 0; i < 4; i++) {          /* (B^T d) B: columns */
            float *vi = v + (i * 4 * stride + t) * cin + c;
            store8(vi, r[i][0] - r[i][2]);
            store8(vi + stride * cin, r[i][1] + r[i][2]);
            store8(vi + 2 * stride * cin, r[i][2] - r[i][1]);
            store8(vi + 3 * stride * cin, r[i][1] - r[i][3]);
        }
    }
}

/* out's 2x2 tile (ty, tx) = A^T m[., t] A, clipped to the map. */
static void wino_output(const float *m, long b, long height, long width, long cout, long ty,
                        long tx, int t, float *out) {
    const long oy = 2 * ty, ox = 2 * tx;
    for (long k = 0; k < cout; k += 8) {
        vec8 s0[4], s1[4];
        for (int j = 0; j < 4; j++) {          /* A^T m: rows */
            const float *mj = m + (j * TILES + t) * cout + k;
            vec8 m0 = load8(mj), m1 = load8(mj + 4 * TILES * cout);
            vec8 m2 = load8(mj + 8 * TILES * cout), m3 = load8(mj + 12 * TILES * cout);
            s0[j] = m0 + m1 + m2;
            s1[j] = m1 - m2 - m3;
        }
        float *o = out + ((b * height + oy) * width + ox) * cout + k;
        store8(o, s0[0] + s0[1] + s0[2]);
        if (ox + 1 < width) store8(o + cout, s0[1] - s0[2] - s0[3]);
        if (oy + 1 < height) {
            store8(o + width * cout, s1[0] + s1[1] + s1[2]);
            if (ox + 1 < width) store8(o + width * cout + cout, s1[1] - s1[2] - s1[3]);
        }
    }
}

/* How the Winograd kernels share out a map's 2x2 tiles: rows of tiles (image, tile row), in
 * `nthreads` chunks of `step` rows. */
typedef struct {
    long tile_rows, tile_cols, rows, step;
    int nthreads;
} tile_plan;

static tile_plan plan_tiles(long batch, long height, long width, int nthreads) {
    tile_plan p = {.tile_rows = (height + 1) / 2, .tile_cols = (width + 1) / 2};
    p.rows = batch * p.tile_rows;
    p.nthreads = clamp_threads(nthreads, p.rows);
    p.step = (p.rows + p.nthreads - 1) / p.nthreads;
    return p;
}

/* Returns 0, or -1 if the work buffers cannot be allocated. */
int rcpb_conv3x3_winograd(const float *x, const float *u, long batch, long height, long width,
                          long cin, long cout, float *out, int nthreads) {
    const tile_plan p = plan_tiles(batch, height, width, nthreads);
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel for num_threads(p.nthreads) schedule(static, 1) reduction(| : failed)
#endif
    for (int th = 0; th < p.nthreads; th++) {
        float *v = malloc(16 * TILES * cin * sizeof(float));
        float *m = malloc(16 * TILES * cout * sizeof(float));
        if (v == NULL || m == NULL) {
            failed = 1;
        } else {
            const long r1 = chunk_start(th + 1, p.step, p.rows);
            for (long r = chunk_start(th, p.step, p.rows); r < r1; r++) {
                const long b = r / p.tile_rows, ty = r % p.tile_rows;
                for (long tx = 0; tx < p.tile_cols; tx += TILES) {
                    const int nt = p.tile_cols - tx < TILES ? (int)(p.tile_cols - tx) : TILES;
                    for (int t = 0; t < nt; t++)
                        wino_input(x, b, height, width, cin, ty, tx + t, t, TILES, v);
                    switch (nt) {              /* block sizes as constants: sums in registers */
                    case 6: wino_products(6, v, u, cin, cout, m); break;
                    case 5: wino_products(5, v, u, cin, cout, m); break;
                    case 4: wino_products(4, v, u, cin, cout, m); break;
                    case 3: wino_products(3, v, u, cin, cout, m); break;
                    case 2: wino_products(2, v, u, cin, cout, m); break;
                    default: wino_products(1, v, u, cin, cout, m); break;
                    }
                    for (int t = 0; t < nt; t++)
                        wino_output(m, b, height, width, cout, ty, tx + t, t, out);
                }
            }
        }
        free(v);
        free(m);
    }
    return failed ? -1 : 0;
}

/* ------------------------------------------------------------------ 3x3 conv weight gradient
 * (Winograd) The gradient of the transformed weights u = G w G^T of the convolution above is
 *
 *     du[e, i, o] = sum over tiles of (B^T d[i] B)[e] * (A dy[o] A^T)[e]
 *
 * with dy[o] the 2x2 tile of the output gradient (zeros outside the map); the caller forms
 * dw = G^T du G. Rows of tiles are split into chunks; each chunk adds into its own
 * partial[chunk] ([16, cin, cout]), and the caller adds them up in a fixed order, so results
 * depend on the thread count but not on thread timing. Per block
 * of up to GRAD_TILES tiles of a tile row: input transform into v [16, GRAD_TILES, cin],
 * gradient transform into w [16, GRAD_TILES, cout], then du[e] += v[e]^T w[e]. */

#define GRAD_TILES 16

/* w[e, t, k .. k + 8) = (A dy A^T)[e] for the 2x2 tile (ty, tx) of g, channels k .. k + 8. */
static void wino_grad_input(const float *g, long b, long height, long width, long cout,
                            long ty, long tx, int t, float *w) {
    const long oy = 2 * ty, ox = 2 * tx;
    const int right = ox + 1 < width, below = oy + 1 < height;
    for (long k = 0; k < cout; k += 8) {
        const float *p = g + ((b * height + oy) * width + ox) * cout + k;
        const vec8 zero = splat8(0.0f);
        vec8 y00 = load8(p), y01 = right ? load8(p + cout) : zero;
        vec8 y10 = below ? load8(p + width * cout) : zero;
        vec8 y11 = right && below ? load8(p + width * cout + cout) : zero;
        vec8 rows[4][2] = {{y00, y01}, {y00 + y10, y01 + y11}, {y00 - y10, y01 - y11},
                           {-y10, -y11}};                       /* A dy */
        for (int i = 0; i < 4; i++) {                            /* (A dy) A^T */
            float *wi = w + (i * 4 * GRAD_TILES + t) * cout + k;
            vec8 a = rows[i][0], c = rows[i][1];
            store8(wi, a);
            store8(wi + GRAD_TILES * cout, a + c);
            store8(wi + 2 * GRAD_TILES * cout, a - c);
            store8(wi + 3 * GRAD_TILES * cout, -c);
        }
    }
}

/* du[i0 + r, o0 .. o0 + 8 * OV) += sum over t < nt of v[t, i0 + r] * w[t, o0 ..], r < IB */
static inline __attribute__((always_inline)) void
wino_grad_block(int IB, int OV, const float *restrict v, const float *restrict w, int nt,
                long cin, long cout, long i0, long o0, float *restrict du) {
    vec8 a[12][2];
    for (int r = 0; r < IB; r++)
        for (int j = 0; j < OV; j++) a[r][j] = load8(du + (i0 + r) * cout + o0 + 8 * j);
    for (int t = 0; t < nt; t++) {
        vec8 wv[2];
        for (int j = 0; j < OV; j++) wv[j] = load8(w + t * cout + o0 + 8 * j);
        for (int r = 0; r < IB; r++) {
            vec8 b = splat8(v[t * cin + i0 + r]);
            for (int j = 0; j < OV; j++) a[r][j] = madd8(b, wv[j], a[r][j]);
        }
    }
    for (int r = 0; r < IB; r++)
        for (int j = 0; j < OV; j++) store8(du + (i0 + r) * cout + o0 + 8 * j, a[r][j]);
}

/* All input channels for output channels [o0, o0 + 8 * OV): blocks of 12 (OV = 1) or 6
 * (OV = 2) input channels, then 4, 2, 1. */
static inline __attribute__((always_inline)) void
wino_grad_channels(int OV, const float *v, const float *w, int nt, long cin, long cout,
                   long o0, float *du) {
    long i = 0;
    if (OV == 1)
        for (; i + 12 <= cin; i += 12) wino_grad_block(12, 1, v, w, nt, cin, cout, i, o0, du);
    for (; i + 6 <= cin; i += 6) wino_grad_block(6, OV, v, w, nt, cin, cout, i, o0, du);
    for (; i + 4 <= cin; i += 4) wino_grad_block(4, OV, v, w, nt, cin, cout, i, o0, du);
    for (; i + 2 <= cin; i += 2) wino_grad_block(2, OV, v, w, nt, cin, cout, i, o0, du);
    for (; i < cin; i++) wino_grad_block(1, OV, v, w, nt, cin, cout, i, o0, du);
}

/* Returns the number of chunks written, min(nthreads, batch * tile rows, MAX_THREADS) (partial
 * must hold nthreads of them), or -1 if the work buffers cannot be allocated. */
int rcpb_conv3x3_winograd_weight_grad(const float *x, const float *g, long batch, long height,
                                      long width, long cin, long cout, float *partial,
                                      int nthreads) {
    const tile_plan p = plan_tiles(batch, height, width, nthreads);
    const long size = 16 * cin * cout;
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel for num_threads(p.nthreads) schedule(static, 1) reduction(| : failed)
#endif
    for (int th = 0; th < p.nthreads; th++) {
        float *du = partial + th * size;
        float *v = malloc(16 * GRAD_TILES * cin * sizeof(float));
        float *w = malloc(16 * GRAD_TILES * cout * sizeof(float));
        memset(du, 0, size * sizeof(float));
        if (v == NULL || w == NULL) {
            failed = 1;
        } else {
            const long r1 = chunk_start(th + 1, p.step, p.rows);
            for (long r = chunk_start(th, p.step, p.rows); r < r1; r++) {
                const long b = r / p.tile_rows, ty = r % p.tile_rows;
                for (long tx = 0; tx < p.tile_cols; tx += GRAD_TILES) {
                    const int nt = p.tile_cols - tx < GRAD_TILES ? (int)(p.tile_cols - tx)
                                                                 : GRAD_TILES;
                    for (int t = 0; t < nt; t++) {
                        wino_input(x, b, height, width, cin, ty, tx + t, t, GRAD_TILES, v);
                        wino_grad_input(g, b, height, width, cout, ty, tx + t, t, w);
                    }
                    for (int e = 0; e < 16; e++) {
                        const float *ve = v + e * GRAD_TILES * cin;
                        const float *we = w + e * GRAD_TILES * cout;
                        float *due = du + e * cin * cout;
                        long o = 0;
                        for (; o + 16 <= cout; o += 16)
                            wino_grad_channels(2, ve, we, nt, cin, cout, o, due);
                        for (; o + 8 <= cout; o += 8)
                            wino_grad_channels(1, ve, we, nt, cin, cout, o, due);
                    }
                }
            }
        }
        free(v);
        free(w);
    }
    return failed ? -1 : p.nthreads;
}
