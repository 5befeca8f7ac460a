// The kernels of model/cpu_kernels.h written once over a SIMD vector of R1_VEC_WIDTH floats (GCC
// vector extensions), compiled by cpu_kernels_{avx512,avx2,generic}.cc with their own -m flags.
// Include only from those files, after defining R1_VEC_WIDTH and R1_KERNEL_NS. Everything here has
// internal linkage and uses no templates from the standard library (see cpu_kernels.h for why).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "model/cpu_kernels.h"

namespace r1kit::cpu::R1_KERNEL_NS {
namespace {

constexpr int VW = R1_VEC_WIDTH;
typedef float vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
// The first n < VW lanes (the rest 0 on load, untouched in memory on store). Masked moves where the
// ISA has them: a memcpy of a variable length is a library call, and the tails of short rows
// (head_dim 48, 35-token attention rows) are a large share of their work.
#if R1_VEC_WIDTH == 16 && defined(__AVX512F__)
inline vf load_part(const float* p, int64_t n) { return (vf)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p); }
inline void store_part(float* p, vf v, int64_t n) { _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v); }
#elif R1_VEC_WIDTH == 8 && defined(__AVX2__)
inline __m256i lane_mask(int64_t n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
inline vf load_part(const float* p, int64_t n) { return (vf)_mm256_maskload_ps(p, lane_mask(n)); }
inline void store_part(float* p, vf v, int64_t n) { _mm256_maskstore_ps(p, lane_mask(n), (__m256)v); }
#else
inline vf load_part(const float* p, int64_t n) {
  vf v = {};
  std::memcpy(&v, p, static_cast<size_t>(n) * 4);
  return v;
}
inline void store_part(float* p, vf v, int64_t n) { std::memcpy(p, &v, static_cast<size_t>(n) * 4); }
#endif
// x - 0 is x for every x, so this compiles to one broadcast (from memory when x is loaded); vf{} + x
// must turn -0.0 into +0.0, which costs a scalar add before the broadcast in every hot loop.
inline vf splat(float x) { return x - vf{}; }

// Sum of the lanes as a fixed pairwise tree (the same for every call): lane i + w added into lane i
// for w = VW/2, ..., 1. Written as halves of narrower vectors: going through memory instead (one
// store, then scalar loads of the lanes) stalled on the store for ~10% of the training attention.
// `op` combines the low half with the high half, lane by lane, down to one lane (hmax uses it too).
typedef float vf2 __attribute__((vector_size(8)));
typedef float vf4 __attribute__((vector_size(16)));
typedef float vf8 __attribute__((vector_size(32)));
template <typename Op>
inline float tree(vf2 v, Op op) {
  return op(v[0], v[1]);
}
template <typename Op>
inline float tree(vf4 v, Op op) {
  return tree(op(__builtin_shufflevector(v, v, 0, 1), __builtin_shufflevector(v, v, 2, 3)), op);
}
template <typename Op>
inline float tree(vf8 v, Op op) {
  return tree(op(__builtin_shufflevector(v, v, 0, 1, 2, 3), __builtin_shufflevector(v, v, 4, 5, 6, 7)), op);
}
#if R1_VEC_WIDTH == 16
template <typename Op>
inline float tree(vf v, Op op) {
  return tree(op(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7),
                 __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15)),
              op);
}
#endif
inline float hsum(vf v) {
  return tree(v, [](auto a, auto b) { return a + b; });
}
// hsum of VW accumulators at once: lane j of the result is exactly hsum(t[j]). Each level adds lane
// i + w into lane i of every accumulator's partial vector, as hsum does, while shuffles pack two
// accumulators' halves into one register, so the reduction costs VW - 1 vector adds instead of
// VW scalar trees (at K = 512 the scalar trees took about a quarter of a 4 x 4 tile's time).
// The shuffle masks are written out per width: GCC turns a literal constant mask into one two-source
// permute, while masks built in a loop compiled to code slower than the scalar trees.
template <int W>
inline vf fold(vf a, vf b);  // lanes [a's groups summed at width W | b's], each group of 2W -> W
#if R1_VEC_WIDTH == 16
template <> inline vf fold<8>(vf a, vf b) {
  const vi lo = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
  const vi hi = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
  return __builtin_shuffle(a, b, lo) + __builtin_shuffle(a, b, hi);
}
template <> inline vf fold<4>(vf a, vf b) {
  const vi lo = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
  const vi hi = {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31};
  return __builtin_shuffle(a, b, lo) + __builtin_shuffle(a, b, hi);
}
template <> inline vf fold<2>(vf a, vf b) {
  const vi lo = {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};
  const vi hi = {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31};
  return __builtin_shuffle(a, b, lo) + __builtin_shuffle(a, b, hi);
}
template <> inline vf fold<1>(vf a, vf b) {
  const vi lo = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  const vi hi = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
  return __builtin_shuffle(a, b, lo) + __builtin_shuffle(a, b, hi);
}
#elif R1_VEC_WIDTH == 8
template <> inline vf fold<4>(vf a, vf b) {
  const vi lo = {0, 1, 2, 3, 8, 9, 10, 11};
  const vi hi = {4, 5, 6, 7, 12, 13, 14, 15};
  return __builtin_shuffle(a, b, lo) + __builtin_shuffle(a, b, hi);
}
template <> inline vf fold<2>(vf a, vf b) {
  const vi lo = {0, 1, 4, 5, 8, 9, 12, 13};
  const vi hi = {2, 3, 6, 7, 10, 11, 14, 15};
  return __builtin_shuffle(a, b, lo) + __builtin_shuffle(a, b, hi);
}
template <> inline vf fold<1>(vf a, vf b) {
  const vi lo = {0, 2, 4, 6, 8, 10, 12, 14};
  const vi hi = {1, 3, 5, 7, 9, 11, 13, 15};
  return __builtin_shuffle(a, b, lo) + __builtin_shuffle(a, b, hi);
}
#elif R1_VEC_WIDTH == 4
template <> inline vf fold<2>(vf a, vf b) {
  const vi lo = {0, 1, 4, 5};
  const vi hi = {2, 3, 6, 7};
  return __builtin_shuffle(a, b, lo) + __builtin_shuffle(a, b, hi);
}
template <> inline vf fold<1>(vf a, vf b) {
  const vi lo = {0, 2, 4, 6};
  const vi hi = {1, 3, 5, 7};
  return __builtin_shuffle(a, b, lo) + __builtin_shuffle(a, b, hi);
}
#else
#error "R1_VEC_WIDTH must be 16, 8 or 4"
#endif
template <int W>
inline void fold_level(vf* t, int n) {  // n vectors -> n / 2
  for (int i = 0; i < n / 2; ++i) t[i] = fold<W>(t[2 * i], t[2 * i + 1]);
  if constexpr (W > 1) fold_level<W / 2>(t, n / 2);
}
// out[j] = hsum(acc[j]) for j < n (n <= VW).
inline void hsum_many(vf* acc, int n, float* out) {
  vf t[VW];
  for (int j = 0; j < VW; ++j) t[j] = j < n ? acc[j] : vf{};
  fold_level<VW / 2>(t, VW);
  float lanes[VW];
  std::memcpy(lanes, &t[0], sizeof lanes);
  for (int j = 0; j < n; ++j) out[j] = lanes[j];
}

// The largest lane by the same tree as hsum (lane i kept where it is > lane i + w).
inline float hmax(vf v) {
  return tree(v, [](auto a, auto b) { return a > b ? a : b; });
}
inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline vf load_n(const float* p, int64_t n) { return n >= VW ? load(p) : load_part(p, n); }
inline void store_n(float* p, vf v, int64_t n) {
  if (n >= VW)
    store(p, v);
  else
    store_part(p, v, n);
}
// The largest of x[0, n): a vector pass, then the tail (NaNs are passed over; -inf when there is none).
inline float row_max(const float* x, int64_t n) {
  vf mv = splat(-__builtin_inff());
  int64_t i = 0;
  for (; i + VW <= n; i += VW) {
    const vf v = load(x + i);
    mv = v > mv ? v : mv;
  }
  float m = hmax(mv);
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}
// out[0, d) = x[0, d) * s.
inline void scale_into(float* out, const float* x, float s, int64_t d) {
  const vf sv = splat(s);
  for (int64_t c = 0; c < d; c += VW) store_n(out + c, load_n(x + c, d - c) * sv, d - c);
}

// exp(x) for x >= -87.3 (else 0), Cephes' single-precision polynomial on x - n*ln2 (|error| ~1 ulp).
inline vf vexp(vf x) {
  const vf lo = splat(-87.33654f), hi = splat(88.37626f);
  vf c = x < lo ? lo : x;
  c = c > hi ? hi : c;
  const vf magic = splat(12582912.0f);  // 1.5 * 2^23: adding and subtracting rounds to an integer
  vf n = (c * 1.44269504088896341f + magic) - magic;
  vf r = c - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vf p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  vf y = p * (r * r) + r + 1.0f;
  vi e = (__builtin_convertvector(n, vi) + 127) << 23;
  y = y * (vf)e;  // 2^n: the bits of (n + 127) << 23
  return x < lo ? vf{} : y;
}

// ---- linear ----------------------------------------------------------------------------------
// Input rows are taken in blocks of kRowBlock (they stay in L2 while weight tiles stream past them
// once per block) and the reduction in blocks of kKBlock columns (a weight tile's block stays in L1
// while every input tile of the row block uses it: at K = 4864, 4 whole weight rows do not fit).
constexpr int64_t kRowBlock = 64;
constexpr int64_t kKBlock = 1024;  // a multiple of every VW
static_assert(kKBlock % (2 * VW) == 0, "k blocks must start at vector (and packed bfloat16 chunk) boundaries");

// How the linear reads weight rows: float32 [n, K], one vector per load, or bfloat16 as packed by
// pack_bf16 (cpu_kernels.h), two vectors per load: a 32-bit word holds value j of a chunk in its low
// half and value VW + j in its high half, and a shift and a mask widen them exactly into the lanes
// the float32 rows would load. row(): row n's start; within a tile (which never crosses a panel of
// kBf16Panel rows) rows are tile_ldw apart; at(): where a row's value k (a multiple of kVecs * VW) is.
struct F32Rows {
  typedef float T;
  static constexpr int kVecs = 1;
  static constexpr int64_t kPanel = 1;
  static const T* row(const T* w, int64_t n, int64_t K) { return w + n * K; }
  static int64_t tile_ldw(int64_t K) { return K; }
  static const T* at(const T* row, int64_t k, int64_t) { return row + k; }
  static void load_full(const T* p, vf* v) { v[0] = load(p); }
  static void load_tail(const T* p, int64_t t, vf* v) { v[0] = load_part(p, t); }
};
typedef uint32_t vu __attribute__((vector_size(VW * 4)));
struct Bf16Rows {
  typedef uint32_t T;
  static constexpr int kVecs = 2;
  static constexpr int64_t kPanel = kBf16Panel;
  template <typename P>  // const T (the kernel reads) or T (pack_bf16 writes)
  static P* row(P* w, int64_t n, int64_t K) {
    return w + (n / kPanel) * kPanel * bf16_row_words(K, VW) + (n % kPanel) * VW;
  }
  static int64_t tile_ldw(int64_t) { return VW; }
  template <typename P>
  static P* at(P* row, int64_t k, int64_t) { return row + k / (2 * VW) * kPanel * VW; }
  static void load_full(const T* p, vf* v) {
    vu u;
    std::memcpy(&u, p, sizeof u);
    v[0] = (vf)(u << 16);
    v[1] = (vf)(u & 0xFFFF0000u);
  }
  static void load_tail(const T* p, int64_t, vf* v) { load_full(p, v); }  // chunks are zero-padded
};

// Writes one NR x MR tile's sums: hsum of each accumulator, plus the bias, into y.
template <int NR, int MR>
inline void tile_store(const LinearArgs& a, int64_t n0, int64_t m0, vf (&acc)[NR][MR]) {
  float sums[NR * MR];
  for (int i = 0; i < NR * MR; i += VW) {
    const int n = NR * MR - i < VW ? NR * MR - i : VW;
    hsum_many(&acc[0][0] + i, n, sums + i);
  }
  for (int m = 0; m < MR; ++m) {
    float* y = a.y + (m0 + m) * a.ldy + n0;
    for (int r = 0; r < NR; ++r) {
      float v = sums[r * MR + m];
      if (a.bias) v += a.bias[n0 + r];
      y[r] = a.accumulate ? y[r] + v : v;
    }
  }
}

// One pass of an NR x MR tile (NR weight rows from w, which points at their values k0, row stride
// ldw, against MR input rows) over k in [k0, k1): each output a lane-wise dot product in steps of
// VW (a zero-padded last step at k1 = K), then hsum. Lane j of an accumulator adds the products at k = j (mod VW) in increasing k,
// and k blocks start at multiples of 2 * VW, so the bits depend only on K: not on the blocking,
// batch, tile or weight layout. Accumulators start at zero (k0 = 0) or from `part`, and go to y
// (k1 = K) or back to `part`.
// PF: the steps at k0 + [pf_lo, pf_hi) also prefetch the same distance into `pf`'s first pf_rows
// weight rows (lines the next pass needs).
template <typename L, int NR, int MR, bool PF>
inline void tile_pass(const LinearArgs& a, const typename L::T* w, int64_t ldw, int64_t n0, int64_t m0, int64_t k0,
                      int64_t k1, vf* part, const typename L::T* pf = nullptr, int64_t pf_rows = 0, int64_t pf_lo = 0,
                      int64_t pf_hi = 0) {
  constexpr int S = L::kVecs * VW;  // k per weight load
  const float* x = a.x + m0 * a.ldx;
  vf acc[NR][MR];
  for (int r = 0; r < NR; ++r)
    for (int m = 0; m < MR; ++m) acc[r][m] = k0 == 0 ? vf{} : part[r * MR + m];
  int64_t k = k0;
  for (; k + S <= k1; k += S) {
    if constexpr (PF) {
      if (k - k0 >= pf_lo && k - k0 < pf_hi)
        for (int r = 0; r < NR; ++r)
          if (r < pf_rows) __builtin_prefetch(L::at(pf + r * ldw, k - k0, a.k), 0, 3);
    }
    vf wv[NR][L::kVecs];
    for (int r = 0; r < NR; ++r) L::load_full(L::at(w + r * ldw, k - k0, a.k), wv[r]);
    for (int h = 0; h < L::kVecs; ++h)
      for (int m = 0; m < MR; ++m) {
        const vf xv = load(x + m * a.ldx + k + h * VW);
        for (int r = 0; r < NR; ++r) acc[r][m] += wv[r][h] * xv;
      }
  }
  if (k < k1) {  // t < S values left: whole vectors, then a zero-padded one (as for float32 rows)
    const int64_t t = k1 - k;
    vf wv[NR][L::kVecs];
    for (int r = 0; r < NR; ++r) L::load_tail(L::at(w + r * ldw, k - k0, a.k), t, wv[r]);
    for (int h = 0; h * VW < t; ++h) {
      const int64_t th = t - h * VW;
      for (int m = 0; m < MR; ++m) {
        const vf xv = th >= VW ? load(x + m * a.ldx + k + h * VW) : load_part(x + m * a.ldx + k + h * VW, th);
        for (int r = 0; r < NR; ++r) acc[r][m] += wv[r][h] * xv;
      }
    }
  }
  if (k1 == a.k) {
    tile_store<NR, MR>(a, n0, m0, acc);
  } else {
    for (int r = 0; r < NR; ++r)
      for (int m = 0; m < MR; ++m) part[r * MR + m] = acc[r][m];
  }
}

// Weight rows [n0, n0 + NR) against input rows [m_begin, m_end) (at most kRowBlock of them).
template <typename L, int NR>
inline void linear_columns(const LinearArgs& a, const typename L::T* weights, int64_t n0, int64_t m_begin,
                           int64_t m_end) {
  const int64_t K = a.k, ldw = L::tile_ldw(K);
  constexpr int64_t S = L::kVecs * VW;  // k per weight load: one cache line of a row
  const typename L::T* w = L::row(weights, n0, K);
  const int64_t next_rows = imin(NR, a.n - n0 - NR);  // the next weight tile's rows (<= 0: none)
  vf part[(kRowBlock / 4 + 1) * NR * 4];               // accumulators between k blocks
  for (int64_t k0 = 0; k0 < K; k0 += kKBlock) {
    const int64_t k1 = imin(K, k0 + kKBlock);
    // The next pass reads the next k block of these rows, or after the last one the next tile.
    const typename L::T* pf = k1 < K ? L::at(w, k1, K) : L::row(weights, next_rows > 0 ? n0 + NR : n0, K);
    const int64_t pf_rows = k1 < K ? NR : next_rows;
    const typename L::T* wk = L::at(w, k0, K);
    // A model larger than the caches streams its weights from DRAM every decode step. Where several
    // input tiles share this weight block, their passes take turns prefetching the lines of the
    // next pass: each prefetches those of an equal share of its steps, interleaved with them. (All
    // in the first pass asked DRAM for a whole tile in a sixteenth of its compute time at 64 rows:
    // weight-streaming linears ran ~3% slower on a Zen 4 core. A burst of prefetches before each
    // pass instead cost ~5% where the weights sit in L2.)
    const int64_t passes = (m_end - m_begin) / 4;  // of whole input tiles
    const int64_t steps = (k1 - k0 + S - 1) / S;
    const int64_t share = pf_rows > 0 && m_end - m_begin > 4 ? (steps + passes - 1) / passes : 0;
    int64_t m = m_begin, lo = 0;
    vf* p = part;
    for (; m + 4 <= m_end; m += 4, p += NR * 4, lo += share * S) {
      if (share > 0 && lo < k1 - k0)
        tile_pass<L, NR, 4, true>(a, wk, ldw, n0, m, k0, k1, p, pf, pf_rows, lo, lo + share * S);
      else
        tile_pass<L, NR, 4, false>(a, wk, ldw, n0, m, k0, k1, p);
    }
    switch (m_end - m) {
      case 3: tile_pass<L, NR, 3, false>(a, wk, ldw, n0, m, k0, k1, p); break;
      case 2: tile_pass<L, NR, 2, false>(a, wk, ldw, n0, m, k0, k1, p); break;
      case 1: tile_pass<L, NR, 1, false>(a, wk, ldw, n0, m, k0, k1, p); break;
      default: break;
    }
  }
}

template <typename L>
void linear_rows(const LinearArgs& a, const typename L::T* w, int64_t n_begin, int64_t n_end) {
  for (int64_t mb = 0; mb < a.rows; mb += kRowBlock) {
    const int64_t me = imin(a.rows, mb + kRowBlock);
    int64_t n = n_begin;
    // Single rows up to a panel boundary: a wider tile must not cross one (callers split at multiples of 8).
    for (; n < n_end && n % L::kPanel != 0; ++n) linear_columns<L, 1>(a, w, n, mb, me);
    if (me - mb < 4) {  // few rows: the step is the time to stream the weights from memory
      // Float32 rows one at a time, so that a matrix is read front to back as one stream. The hardware
      // prefetcher follows that at ~85% of the core's read rate (Zen 4 with huge pages, 39M shape at
      // batch 1: 29 of 34 GB/s). A tile of 8 (2) rows walks 8 (2) streams a row apart in lockstep:
      // 16 (9) GB/s. bfloat16 panels are one stream already. Same bits either way (tile_pass).
      if constexpr (L::kPanel == 1) {
        for (; n < n_end; ++n) linear_columns<L, 1>(a, w, n, mb, me);
      } else {
        for (; n + 8 <= n_end; n += 8) linear_columns<L, 8>(a, w, n, mb, me);
      }
    }
    for (; n + 4 <= n_end; n += 4) linear_columns<L, 4>(a, w, n, mb, me);
    for (; n < n_end; ++n) linear_columns<L, 1>(a, w, n, mb, me);
  }
}

// Fewer than 4 input rows (MR of them) against the k-chunked copy (cpu_kernels.h): in each panel, a
// chunk of every row in [n_begin, n_end) before the next chunk, the rows' accumulators waiting in
// part between chunks. Chunks start at multiples of VW, so the sums are those of tile_pass on w.
static_assert(kChunkCols % VW == 0, "chunks must start at vector boundaries");
template <int MR>
void linear_chunked(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  vf part[kChunkPanel * MR];
  for (int64_t p0 = n_begin / kChunkPanel * kChunkPanel; p0 < n_end; p0 += kChunkPanel) {
    const int64_t r0 = p0 > n_begin ? p0 : n_begin, r1 = imin(n_end, p0 + kChunkPanel);
    for (int64_t k0 = 0; k0 < a.k; k0 += kChunkCols) {
      const int64_t k1 = imin(a.k, k0 + kChunkCols);
      for (int64_t n = r0; n < r1; ++n)
        tile_pass<F32Rows, 1, MR, false>(a, a.w_chunked + chunked_offset(n, k0, a.n, a.k), a.k, n, 0, k0, k1,
                                         part + (n - r0) * MR);
    }
  }
}

void linear(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  if (a.w_bf16 != nullptr && a.bf16_width == VW) {
    linear_rows<Bf16Rows>(a, a.w_bf16, n_begin, n_end);
  } else if (a.w_chunked != nullptr && a.rows < 4) {
    switch (a.rows) {
      case 3: linear_chunked<3>(a, n_begin, n_end); break;
      case 2: linear_chunked<2>(a, n_begin, n_end); break;
      case 1: linear_chunked<1>(a, n_begin, n_end); break;
      default: break;
    }
  } else {
    linear_rows<F32Rows>(a, a.w, n_begin, n_end);
  }
}

bool pack_bf16(const float* w, int64_t k, int64_t row_begin, int64_t row_end, uint32_t* out) {
  const int64_t chunks = bf16_row_words(k, VW) / VW;
  for (int64_t n = row_begin; n < row_end; ++n) {
    const uint32_t* src = reinterpret_cast<const uint32_t*>(w + n * k);
    uint32_t low = 0;  // OR of the low halves: nonzero when a value is not a bfloat16 number
    for (int64_t i = 0; i < k; ++i) low |= src[i];
    if ((low & 0xFFFFu) != 0) return false;
    uint32_t* row = Bf16Rows::row(out, n, k);
    for (int64_t c = 0; c < chunks; ++c) {
      uint32_t* dst = Bf16Rows::at(row, c * 2 * VW, k);
      for (int j = 0; j < VW; ++j) {
        const int64_t lo = c * 2 * VW + j, hi = lo + VW;
        dst[j] = (lo < k ? src[lo] >> 16 : 0u) | (hi < k ? src[hi] & 0xFFFF0000u : 0u);
      }
    }
  }
  return true;
}

// ---- attention over the cache ---------------------------------------------------------------
inline vf dot_lanes(const float* a, const float* b, int64_t d) {  // dot(a, b) = hsum(dot_lanes(a, b))
  vf acc = {};
  int64_t i = 0;
  for (; i + VW <= d; i += VW) acc += load(a + i) * load(b + i);
  if (i < d) acc += load_part(a + i, d - i) * load_part(b + i, d - i);
  return acc;
}
inline void axpy(float* y, float s, const float* x, int64_t d) {  // y += s * x
  int64_t i = 0;
  const vf sv = splat(s);
  for (; i + VW <= d; i += VW) store(y + i, load(y + i) + sv * load(x + i));
  if (i < d) store_part(y + i, load_part(y + i, d - i) + sv * load_part(x + i, d - i), d - i);
}

// out[j] = dot(x, keys[j]) for j < n, keys row stride `stride` (VW keys reduced together by
// hsum_many: the same bits as one hsum each).
inline void dots(const float* x, const float* keys, int64_t stride, int64_t n, int64_t d, float* out) {
  for (int64_t j0 = 0; j0 < n; j0 += VW) {
    const int m = static_cast<int>(imin(VW, n - j0));
    vf acc[VW];
    for (int j = 0; j < m; ++j) acc[j] = dot_lanes(x, keys + (j0 + j) * stride, d);
    hsum_many(acc, m, out + j0);
  }
}

float exp_shift(const float* x, float scale, float shift, float* out, int64_t n);

void attention(const AttentionArgs& a, int64_t item_begin, int64_t item_end) {
  const int64_t D = a.head_dim, R = a.heads / a.kv_heads, T = a.tokens;
  int64_t longest = 0;
  for (int64_t b = 0; b < a.batch; ++b) longest = a.past[b] + T > longest ? a.past[b] + T : longest;
  float* scores = static_cast<float*>(std::malloc(static_cast<size_t>(longest + VW) * sizeof(float)));
  float* acc = static_cast<float*>(std::malloc(static_cast<size_t>(D + VW) * sizeof(float)));
  for (int64_t item = item_begin; item < item_end; ++item) {
    const int64_t b = item / a.kv_heads, g = item % a.kv_heads;
    const int64_t head_offset = (a.cache_row[b] * a.kv_heads + g) * a.max_len * D;
    const float* K = a.k_cache + head_offset;
    const float* V = a.v_cache + head_offset;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t len = a.past[b] + t + 1;  // slots [0, len)
      for (int64_t r = 0; r < R; ++r) {
        const int64_t h = g * R + r;
        dots(a.q + (b * T + t) * a.q_stride + h * D, K, D, len, D, scores);
        const float m = row_max(scores, len);
        // softmax(scale * s): weights exp(scale * s - scale * max), normalised at the end.
        const float total = exp_shift(scores, a.scale, a.scale * m, scores, len);
        std::memset(acc, 0, static_cast<size_t>(D) * sizeof(float));
        for (int64_t j = 0; j < len; ++j) axpy(acc, scores[j], V + j * D, D);
        float* o = a.out + (b * T + t) * a.out_stride + h * D;
        scale_into(o, acc, 1.0f / total, D);
      }
    }
  }
  std::free(acc);
  std::free(scores);
}

// ---- element-wise ----------------------------------------------------------------------------
// Row xr's RMSNorm into o, given acc: the lane sums of xr^2 (whole vectors, then the zero-padded tail).
inline void rms_norm_row(const float* xr, const float* w, float* o, int64_t dim, float eps, vf acc) {
  const float inv = 1.0f / __builtin_sqrtf(hsum(acc) / static_cast<float>(dim) + eps);
  const vf iv = splat(inv);
  int64_t i = 0;
  for (; i + VW <= dim; i += VW) store(o + i, load(w + i) * (load(xr + i) * iv));
  for (; i < dim; ++i) o[i] = w[i] * (xr[i] * inv);
}

void rms_norm(const float* x, int64_t ldx, const float* w, float* out, int64_t rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    vf acc = {};
    int64_t i = 0;
    for (; i + VW <= dim; i += VW) {
      const vf v = load(xr + i);
      acc += v * v;
    }
    if (i < dim) {
      const vf v = load_part(xr + i, dim - i);
      acc += v * v;
    }
    rms_norm_row(xr, w, out + r * dim, dim, eps, acc);
  }
}

// h = x + a, then out = rms_norm(h): the residual add in the norm's first pass (the same bits as
// the add and rms_norm apart).
void add_rms_norm(const float* x, const float* a, float* h, const float* w, float* out, int64_t rows, int64_t dim,
                  float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    const float* ar = a + r * dim;
    float* hr = h + r * dim;
    vf acc = {};
    int64_t i = 0;
    for (; i + VW <= dim; i += VW) {
      const vf v = load(xr + i) + load(ar + i);
      store(hr + i, v);
      acc += v * v;
    }
    if (i < dim) {
      const vf v = load_part(xr + i, dim - i) + load_part(ar + i, dim - i);
      store_part(hr + i, v, dim - i);
      acc += v * v;
    }
    rms_norm_row(hr, w, out + r * dim, dim, eps, acc);
  }
}

void rope(const float* x, int64_t ldx, float* out, int64_t ldo, const float* cos, const float* sin, int64_t rows,
          int64_t heads, int64_t dim) {
  const int64_t half = dim / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const float* c = cos + r * dim;
    const float* s = sin + r * dim;
    for (int64_t h = 0; h < heads; ++h) {
      const float* v = x + r * ldx + h * dim;
      float* o = out + r * ldo + h * dim;  // may be v: each lane is read before it is written
      int64_t i = 0;
      for (; i + VW <= half; i += VW) {  // out = x*cos + rotate_half(x)*sin, rotate_half = (-x2, x1)
        const vf x1 = load(v + i), x2 = load(v + half + i);
        store(o + i, x1 * load(c + i) - x2 * load(s + i));
        store(o + half + i, x2 * load(c + half + i) + x1 * load(s + half + i));
      }
      if (i < half) {  // the same lanes' arithmetic on the last half % VW values
        const int64_t t = half - i;
        const vf x1 = load_part(v + i, t), x2 = load_part(v + half + i, t);
        store_part(o + i, x1 * load_part(c + i, t) - x2 * load_part(s + i, t), t);
        store_part(o + half + i, x2 * load_part(c + half + i, t) + x1 * load_part(s + half + i, t), t);
      }
    }
  }
}

void silu_mul(const float* gu, float* out, int64_t rows, int64_t inter) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gu + r * 2 * inter;
    const float* u = g + inter;
    float* o = out + r * inter;
    int64_t i = 0;
    for (; i + VW <= inter; i += VW) {
      const vf gv = load(g + i);
      store(o + i, gv / (1.0f + vexp(-gv)) * load(u + i));
    }
    if (i < inter) {
      const int64_t t = inter - i;
      const vf gv = load_part(g + i, t);
      store_part(o + i, gv / (1.0f + vexp(-gv)) * load_part(u + i, t), t);
    }
  }
}

float exp_shift(const float* x, float scale, float shift, float* out, int64_t n) {
  vf acc = {};
  const vf sc = splat(scale), sh = splat(shift);
  int64_t i = 0;
  for (; i + VW <= n; i += VW) {
    const vf e = vexp(load(x + i) * sc - sh);
    store(out + i, e);
    acc += e;
  }
  if (i < n) {
    const int64_t t = n - i;
    vi lane = {};
    for (int j = 0; j < VW; ++j) lane[j] = j;
    vf e = vexp(load_part(x + i, t) * sc - sh);
    e = lane < static_cast<int32_t>(t) ? e : vf{};  // lanes past the end add nothing
    store_part(out + i, e, t);
    acc += e;
  }
  return hsum(acc);
}

void max_argmax(const float* x, int64_t n, float* max_out, int64_t* index_out) {
  // The maximum, then the first index that holds it.
  const float m = row_max(x, n);
  int64_t idx = 0;
  while (idx < n && !(x[idx] == m)) ++idx;
  if (idx == n) idx = 0;  // all NaN
  *max_out = x[idx];
  *index_out = idx;
}

}  // namespace

#include "model/cpu_train_kernels_impl.h"

const KernelTable* table() {
  static const KernelTable t = [] {
    KernelTable k;
    k.isa = R1_KERNEL_ISA;
    k.vec_width = VW;
    k.linear = &linear;
    k.pack_bf16 = &pack_bf16;
    k.attention = &attention;
    k.rms_norm = &rms_norm;
    k.add_rms_norm = &add_rms_norm;
    k.rope = &rope;
    k.silu_mul = &silu_mul;
    k.exp_shift = &exp_shift;
    k.max_argmax = &max_argmax;
    k.attention_train_forward = &attention_train_forward;
    k.attention_train_backward = &attention_train_backward;
    k.rms_norm_backward = &rms_norm_backward;
    k.silu_mul_backward = &silu_mul_backward;
    k.adamw = &adamw;
    return k;
  }();
  return &t;
}

}  // namespace r1kit::cpu::R1_KERNEL_NS
