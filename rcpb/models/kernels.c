/*
 * CPU kernels of the training step (rcpb/models/kernels.py builds this file on first use and
 * calls it through ctypes):
 *   - training-mode BatchNorm, alone or followed by ReLU, forward and backward
 *     (rcpb/models/bn_relu.py);
 *   - non-overlapping average pooling, forward and backward (rcpb/models/readout.py);
 *   - 3x3 convolutions with padding 1: weight gradient, and Winograd's F(2x2, 3x3) for the
 *     forward pass and the input gradient (rcpb/models/conv3x3.py).
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
static void run(range_fn fn, const args_t *args, int nthreads) {
    long step = (args->rows + nthreads - 1) / nthreads;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nthreads) schedule(static, 1)
#endif
    for (int t = 0; t < nthreads; t++) {
        long r0 = t * step < args->rows ? t * step : args->rows;
        long r1 = (t + 1) * step < args->rows ? (t + 1) * step : args->rows;
        fn(args, t, r0, r1);
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

/* ------------------------------------------------------------------ 3x3 conv weight gradient
 * For out = conv2d(x, w, stride 1, padding 1), x [batch, height, width, cin] and the output
 * gradient g [batch, height, width, cout] (both channels-last):
 *
 *     dw[kh, kw, o, i] = sum over b, y, x of g[b, y, x, o] * x[b, y + kh - 1, x + kw - 1, i]
 *
 * with x = 0 outside the map. The image rows (b, y) are split into `nthreads` equal chunks;
 * chunk t adds its sums into partial[t] ([9, cout, cin]), which the caller adds up in a fixed
 * order. Within a chunk, for each image row, tap (kh, kw), block of output channels and block
 * of input channels, a register block of sums runs along the row's pixels: each pixel loads
 * a few input values and one output-gradient value per output channel, and does one
 * multiply-add per (o, i) pair of the block. */

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

/* acc[o * cin + i] += sum over p < n of g[p * cout + o] * x[p * cin + i], for o < OB and
 * i < 8 * IV. OB and IV are constants at every call, so the sums stay in registers. */
static inline __attribute__((always_inline)) void
wgrad_block(int OB, int IV, const float *restrict g, const float *restrict x, long n,
            long cout, long cin, float *restrict acc) {
    vec8 a[12][2];
    for (int o = 0; o < OB; o++)
        for (int v = 0; v < IV; v++) a[o][v] = load8(acc + o * cin + 8 * v);
    for (long p = 0; p < n; p++) {
        const float *gp = g + p * cout, *xp = x + p * cin;
        vec8 xv[2];
        for (int v = 0; v < IV; v++) xv[v] = load8(xp + 8 * v);
        for (int o = 0; o < OB; o++) {
            vec8 b = splat8(gp[o]);
            for (int v = 0; v < IV; v++) a[o][v] = madd8(b, xv[v], a[o][v]);
        }
    }
    for (int o = 0; o < OB; o++)
        for (int v = 0; v < IV; v++) store8(acc + o * cin + 8 * v, a[o][v]);
}

/* All output channels for input channels [i0, i0 + 8 * IV): blocks of 12 (IV = 1) or 6
 * (IV = 2) output channels, then 4, 2, 1; at most 12 sums in registers. */
static inline __attribute__((always_inline)) void
wgrad_channels(int IV, const float *g, const float *x, long n, long cout, long cin,
               float *acc) {
    long o = 0;
    if (IV == 1) {
        for (; o + 12 <= cout; o += 12)
            wgrad_block(12, 1, g + o, x, n, cout, cin, acc + o * cin);
        for (; o + 8 <= cout; o += 8) wgrad_block(8, 1, g + o, x, n, cout, cin, acc + o * cin);
    }
    for (; o + 6 <= cout; o += 6) wgrad_block(6, IV, g + o, x, n, cout, cin, acc + o * cin);
    for (; o + 4 <= cout; o += 4) wgrad_block(4, IV, g + o, x, n, cout, cin, acc + o * cin);
    for (; o + 2 <= cout; o += 2) wgrad_block(2, IV, g + o, x, n, cout, cin, acc + o * cin);
    for (; o < cout; o++) wgrad_block(1, IV, g + o, x, n, cout, cin, acc + o * cin);
}

/* cin must be a multiple of 8 (the caller checks). Returns the number of chunks written,
 * min(nthreads, batch * height, MAX_THREADS): partial must hold nthreads of them. */
int rcpb_conv3x3_weight_grad(const float *x, const float *g, long batch, long height,
                             long width, long cin, long cout, float *partial, int nthreads) {
    const long rows = batch * height, taps = 9 * cout * cin;
    nthreads = clamp_threads(nthreads, rows);
    const long step = (rows + nthreads - 1) / nthreads;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nthreads) schedule(static, 1)
#endif
    for (int t = 0; t < nthreads; t++) {
        float *restrict acc = partial + t * taps;
        memset(acc, 0, taps * sizeof(float));
        const long r0 = t * step < rows ? t * step : rows;
        const long r1 = (t + 1) * step < rows ? (t + 1) * step : rows;
        for (long r = r0; r < r1; r++) {
            const long b = r / height, y = r % height;
            const float *grow = g + r * width * cout;           /* g[b, y, 0, 0] */
            for (int kh = 0; kh < 3; kh++) {
                const long yy = y + kh - 1;
                if (yy < 0 || yy >= height) continue;
                const float *xrow = x + (b * height + yy) * width * cin;   /* x[b, yy, 0, 0] */
                for (int kw = 0; kw < 3; kw++) {
                    /* output pixels whose input pixel x + kw - 1 lies inside the row */
                    const long lo = kw == 0 ? 1 : 0, hi = kw == 2 ? width - 1 : width;
                    if (hi <= lo) continue;
                    const float *gg = grow + lo * cout, *xx = xrow + (lo + kw - 1) * cin;
                    float *tap = acc + (kh * 3 + kw) * cout * cin;
                    long i = 0;
                    for (; i + 16 <= cin; i += 16)
                        wgrad_channels(2, gg, xx + i, hi - lo, cout, cin, tap + i);
                    for (; i + 8 <= cin; i += 8)
                        wgrad_channels(1, gg, xx + i, hi - lo, cout, cin, tap + i);
                }
            }
        }
    }
    return nthreads;
}

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

/* v[e, t, c .. c + 8) = (B^T d B)[e] for the 4x4 patch d of tile t, channels c .. c + 8. */
static void wino_input(const float *x, long b, long height, long width, long cin, long ty,
                       long tx, int t, float *v) {
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
            float *vi = v + (i * 4 * TILES + t) * cin + c;
            store8(vi, r[i][0] - r[i][2]);
            store8(vi + TILES * cin, r[i][1] + r[i][2]);
            store8(vi + 2 * TILES * cin, r[i][2] - r[i][1]);
            store8(vi + 3 * TILES * cin, r[i][1] - r[i][3]);
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

/* Returns 0, or -1 if the work buffers cannot be allocated. */
int rcpb_conv3x3_winograd(const float *x, const float *u, long batch, long height, long width,
                          long cin, long cout, float *out, int nthreads) {
    const long tile_rows = (height + 1) / 2, tile_cols = (width + 1) / 2;
    const long rows = batch * tile_rows;
    nthreads = clamp_threads(nthreads, rows);
    const long step = (rows + nthreads - 1) / nthreads;
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nthreads) schedule(static, 1) reduction(| : failed)
#endif
    for (int th = 0; th < nthreads; th++) {
        float *v = malloc(16 * TILES * cin * sizeof(float));
        float *m = malloc(16 * TILES * cout * sizeof(float));
        if (v == NULL || m == NULL) {
            failed = 1;
        } else {
            const long r0 = th * step < rows ? th * step : rows;
            const long r1 = (th + 1) * step < rows ? (th + 1) * step : rows;
            for (long r = r0; r < r1; r++) {
                const long b = r / tile_rows, ty = r % tile_rows;
                for (long tx = 0; tx < tile_cols; tx += TILES) {
                    const int nt = tile_cols - tx < TILES ? (int)(tile_cols - tx) : TILES;
                    for (int t = 0; t < nt; t++)
                        wino_input(x, b, height, width, cin, ty, tx + t, t, v);
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
