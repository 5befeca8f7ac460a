// The training kernels of model/cpu_kernels.h (forward and backward of model/train_ops.h), over the
// vector type and helpers of cpu_kernels_impl.h. Included by cpu_kernels_impl.h inside its kernel
// namespace, once per instruction set; nothing else includes it.
namespace {

inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

// y[0, d) (+)= sum over i < n of w[i * ws] * x[i * xs, i * xs + d): the rows' sum held in registers
// (NV vectors at a time, two interleaved partial sums so that the FMA latency overlaps) and stored
// once, where axpy into memory waits on a store-to-load round trip per row. Fixed order: rows
// 0, 2, 4, ... and 1, 3, 5, ..., then the two partial sums added.
template <int NV>
inline void weighted_rows_block(const float* w, int64_t ws, const float* x, int64_t xs, int64_t n, float* y,
                                int64_t last_lanes, bool accumulate) {
  vf a0[NV] = {}, a1[NV] = {};
  auto ld = [&](const float* p, int c) { return c == NV - 1 ? load_n(p, last_lanes) : load(p); };
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    const vf w0 = splat(w[i * ws]), w1 = splat(w[(i + 1) * ws]);
    const float* x0 = x + i * xs;
    const float* x1 = x0 + xs;
    for (int c = 0; c < NV; ++c) {
      a0[c] += w0 * ld(x0 + c * VW, c);
      a1[c] += w1 * ld(x1 + c * VW, c);
    }
  }
  if (i < n) {
    const vf w0 = splat(w[i * ws]);
    for (int c = 0; c < NV; ++c) a0[c] += w0 * ld(x + i * xs + c * VW, c);
  }
  for (int c = 0; c < NV; ++c) {
    const int64_t lanes = c == NV - 1 ? last_lanes : VW;
    const vf sum = a0[c] + a1[c];
    store_n(y + c * VW, accumulate ? load_n(y + c * VW, lanes) + sum : sum, lanes);
  }
}

inline void weighted_rows(const float* w, int64_t ws, const float* x, int64_t xs, int64_t n, int64_t d, float* y,
                          bool accumulate) {
  for (int64_t i0 = 0; i0 < d; i0 += 4 * VW) {
    const int64_t rest = d - i0, nv = imin(4, (rest + VW - 1) / VW), last = rest - (nv - 1) * VW;
    const int64_t last_lanes = last < VW ? last : VW;
    switch (nv) {
      case 1: weighted_rows_block<1>(w, ws, x + i0, xs, n, y + i0, last_lanes, accumulate); break;
      case 2: weighted_rows_block<2>(w, ws, x + i0, xs, n, y + i0, last_lanes, accumulate); break;
      case 3: weighted_rows_block<3>(w, ws, x + i0, xs, n, y + i0, last_lanes, accumulate); break;
      default: weighted_rows_block<4>(w, ws, x + i0, xs, n, y + i0, last_lanes, accumulate); break;
    }
  }
}

// out[i * ldo + j] = sum over k < d of x[i * xs + k] * kt[k * ldk + j], for NQ rows x_i and keys
// j < n given transposed (kt: d rows of ldk >= n rounded up to VW, zero padded). No horizontal sums,
// and NQ x 2 accumulator chains in flight: for short rows of keys this is several times the speed
// of one dot product per key. Fixed order: k ascending.
template <int NQ>
void tile_dots_n(const float* x, int64_t xs, const float* kt, int64_t ldk, int64_t n, int64_t d, float* out,
                 int64_t ldo) {
  int64_t j0 = 0;
  for (; j0 + VW < n; j0 += 2 * VW) {  // two key vectors (the second may be partly padding)
    vf a0[NQ] = {}, a1[NQ] = {};
    for (int64_t k = 0; k < d; ++k) {
      const vf k0 = load(kt + k * ldk + j0), k1 = load(kt + k * ldk + j0 + VW);
      for (int i = 0; i < NQ; ++i) {
        const vf xi = splat(x[i * xs + k]);
        a0[i] += xi * k0;
        a1[i] += xi * k1;
      }
    }
    for (int i = 0; i < NQ; ++i) {
      store(out + i * ldo + j0, a0[i]);
      store_n(out + i * ldo + j0 + VW, a1[i], n - j0 - VW);
    }
  }
  if (j0 < n) {
    vf a0[NQ] = {};
    for (int64_t k = 0; k < d; ++k) {
      const vf k0 = load(kt + k * ldk + j0);
      for (int i = 0; i < NQ; ++i) a0[i] += splat(x[i * xs + k]) * k0;
    }
    for (int i = 0; i < NQ; ++i) store_n(out + i * ldo + j0, a0[i], n - j0);
  }
}

inline void tile_dots(const float* x, int64_t xs, int64_t nq, const float* kt, int64_t ldk, int64_t n, int64_t d,
                      float* out, int64_t ldo) {
  switch (nq) {
    case 1: tile_dots_n<1>(x, xs, kt, ldk, n, d, out, ldo); break;
    case 2: tile_dots_n<2>(x, xs, kt, ldk, n, d, out, ldo); break;
    case 3: tile_dots_n<3>(x, xs, kt, ldk, n, d, out, ldo); break;
    default: tile_dots_n<4>(x, xs, kt, ldk, n, d, out, ldo); break;
  }
}

// The VW x VW transpose by block swaps: at level w, rows r and r + w (r & w == 0) exchange their
// w x w off-diagonal blocks (lanes with l & w set of row r <-> lanes without it of row r + w).
template <int W>
inline void swap_blocks(vf& a, vf& b) {
  vi lo, hi;  // constants once the loop is unrolled (W and VW are)
  for (int l = 0; l < VW; ++l) {
    lo[l] = (l & W) ? VW + l - W : l;
    hi[l] = (l & W) ? VW + l : l + W;
  }
  const vf t = __builtin_shuffle(a, b, lo);
  b = __builtin_shuffle(a, b, hi);
  a = t;
}
template <int W>
inline void transpose_level(vf* m) {
  for (int r = 0; r < VW; ++r)
    if ((r & W) == 0) swap_blocks<W>(m[r], m[r + W]);
  if constexpr (W > 1) transpose_level<W / 2>(m);
}

// kt[k * ldk + j] = rows[j * stride + k] for j < n, k < d; columns n .. ldk-1 zero (ldk >= n).
// VW x VW blocks transposed in registers: the scalar loop (a strided load per element) took ~14%
// of the training attention.
inline void transpose_rows(const float* rows, int64_t stride, int64_t n, int64_t d, float* kt, int64_t ldk) {
  const int64_t whole = ldk / VW * VW;  // columns written by whole-vector stores
  for (int64_t j0 = 0; j0 < whole; j0 += VW)
    for (int64_t k0 = 0; k0 < d; k0 += VW) {
      const int64_t kn = imin(VW, d - k0);
      vf m[VW];
      for (int r = 0; r < VW; ++r) m[r] = j0 + r < n ? load_n(rows + (j0 + r) * stride + k0, kn) : vf{};
      transpose_level<VW / 2>(m);
      for (int64_t c = 0; c < kn; ++c) store(kt + (k0 + c) * ldk + j0, m[c]);
    }
  for (int64_t k = 0; k < d; ++k)  // ldk not a multiple of VW: the last columns one by one
    for (int64_t j = whole; j < ldk; ++j) kt[k * ldk + j] = j < n ? rows[j * stride + k] : 0.0f;
}

inline int64_t round_up_vw(int64_t n) { return (n + VW - 1) / VW * VW; }

// ---- attention without a cache -----------------------------------------------------------------
// The keys a query of row b sees: the prefix's first plen, then its own from `lo` (see
// TrainAttentionArgs). One struct per (row, KV head), so forward and backward walk them alike.
struct KeySpan {
  const float *pk = nullptr, *pv = nullptr;  // prefix key/value j: pk + j * pstride
  int64_t pstride = 0, plen = 0;
  const float *k = nullptr, *v = nullptr;  // own key/value j: k + j * stride
  int64_t stride = 0;
};

inline KeySpan key_span(const TrainAttentionArgs& a, int64_t b, int64_t g) {
  KeySpan s;
  const int64_t D = a.head_dim;
  if (a.prefix_k != nullptr) {
    const int64_t p = b / a.group;
    s.pk = a.prefix_k + p * a.prefix_tokens * a.prefix_stride + g * D;
    s.pv = a.prefix_v + p * a.prefix_tokens * a.prefix_stride + g * D;
    s.pstride = a.prefix_stride;
    s.plen = a.prefix_len[b];
  }
  s.k = a.k + b * a.tokens * a.kv_stride + g * D;
  s.v = a.v + b * a.tokens * a.kv_stride + g * D;
  s.stride = a.kv_stride;
  return s;
}

// A row's keys (and for the backward its values) transposed for tile_dots: own [D][ld], prefix
// [D][pld] (built once per prompt: the group's rows share it).
struct TransposedKeys {
  int64_t ld = 0, pld = 0;
  float *k = nullptr, *v = nullptr, *pk = nullptr, *pv = nullptr;
  explicit TransposedKeys(const TrainAttentionArgs& a)
      : ld(round_up_vw(a.tokens)), pld(a.prefix_k != nullptr ? round_up_vw(a.prefix_tokens) : 0) {
    const size_t n = static_cast<size_t>(a.head_dim * (ld + pld));
    k = static_cast<float*>(std::malloc(2 * n * sizeof(float) + VW * sizeof(float)));
    v = k + a.head_dim * ld;
    pk = v + a.head_dim * ld;
    pv = pk + a.head_dim * pld;
  }
  ~TransposedKeys() { std::free(k); }
  TransposedKeys(const TransposedKeys&) = delete;
  TransposedKeys& operator=(const TransposedKeys&) = delete;
};

// The rows of up to 4 queries x_i (xs apart) against the row's keys, written into out (ldo apart):
// prefix keys 0 .. plen-1 first, then own keys lo_i .. t_i (own key j computed at column plen + j
// and moved down to plen + j - lo_i). kt_own / kt_prefix: transposed keys or values.
inline void row_tiles(const float* x, int64_t xs, int64_t nq, const KeySpan& s, const float* kt_own, int64_t ld,
                      const float* kt_prefix, int64_t pld, const int64_t* lo, int64_t t_last, int64_t d, float* out,
                      int64_t ldo) {
  if (s.plen > 0) tile_dots(x, xs, nq, kt_prefix, pld, s.plen, d, out, ldo);
  tile_dots(x, xs, nq, kt_own, ld, t_last + 1, d, out + s.plen, ldo);
  for (int64_t i = 0; i < nq; ++i)
    if (lo[i] > 0) std::memmove(out + i * ldo + s.plen, out + i * ldo + s.plen + lo[i],
                                static_cast<size_t>(t_last - nq + 1 + i + 1 - lo[i]) * sizeof(float));
}

// Asks for rows [0, n) of `width` floats, `stride` apart, to be brought into L2 (for writing when
// `write`): the rows of a (batch row, KV head) are 3 cache lines out of every 12 (q, k, v of one
// head), a pattern the hardware prefetcher does not follow, and in a training step they were
// written long before (the backward reads what the forward saved), so they come from DRAM.
// Always inlined: GCC's IPA otherwise finds a function of prefetches alone free of side effects
// and drops its calls.
__attribute__((always_inline)) inline void prefetch_rows(const float* p, int64_t stride, int64_t n, int64_t width,
                                                         bool write) {
  constexpr int64_t kLine = 64;
  for (int64_t r = 0; r < n; ++r) {
    const auto first = reinterpret_cast<uintptr_t>(p + r * stride) / kLine * kLine;
    const auto last = reinterpret_cast<uintptr_t>(p + r * stride + width - 1);
    for (uintptr_t line = first; line <= last; line += kLine) {
      if (write)
        __builtin_prefetch(reinterpret_cast<const void*>(line), 1, 2);
      else
        __builtin_prefetch(reinterpret_cast<const void*>(line), 0, 2);
    }
  }
}

// The (batch row, KV head) after row b of `item` in the order the kernels walk them (rows of an
// item, then the next item's), or b = -1 after the last.
struct NextRow {
  int64_t b = -1, g = 0;
};
inline NextRow next_row(const TrainAttentionArgs& a, int64_t item, int64_t b, int64_t item_end) {
  const int64_t G = a.group, KV = a.kv_heads;
  if (b + 1 < (item / KV + 1) * G) return {b + 1, item % KV};
  if (item + 1 < item_end) return {(item + 1) / KV * G, (item + 1) % KV};
  return {};
}

// Row strides of the backward's dq and dk / dv.
inline int64_t dq_ld(const TrainAttentionArgs& a) { return a.dq_stride > 0 ? a.dq_stride : a.heads * a.head_dim; }
inline int64_t dkv_ld(const TrainAttentionArgs& a) { return a.dkv_stride > 0 ? a.dkv_stride : a.kv_heads * a.head_dim; }

// Row b's queries (and dO) of KV head g's query heads, its keys and values, for the next row.
__attribute__((always_inline)) inline void prefetch_row(const TrainAttentionArgs& a, NextRow n, bool backward) {
  if (n.b < 0) return;
  const int64_t D = a.head_dim, T = a.tokens, Tq = T - a.first_query, R = a.heads / a.kv_heads;
  prefetch_rows(a.q + n.b * Tq * a.q_stride + n.g * R * D, a.q_stride, Tq, R * D, false);
  prefetch_rows(a.k + n.b * T * a.kv_stride + n.g * D, a.kv_stride, T, D, false);
  prefetch_rows(a.v + n.b * T * a.kv_stride + n.g * D, a.kv_stride, T, D, false);
  if (!backward) {
    prefetch_rows(a.out + (n.b * Tq * a.heads + n.g * R) * D, a.heads * D, Tq, R * D, true);
    return;
  }
  prefetch_rows(a.dout + (n.b * Tq * a.heads + n.g * R) * D, a.heads * D, Tq, R * D, false);
  prefetch_rows(a.dq + n.b * Tq * dq_ld(a) + n.g * R * D, dq_ld(a), Tq, R * D, true);
  prefetch_rows(a.dk + n.b * T * dkv_ld(a) + n.g * D, dkv_ld(a), T, D, true);
  prefetch_rows(a.dv + n.b * T * dkv_ld(a) + n.g * D, dkv_ld(a), T, D, true);
}

// The row of query position t >= first_query of batch row b in q, out, dout, dq ([B, T - first_query, ...]).
inline int64_t query_row(const TrainAttentionArgs& a, int64_t b, int64_t t) {
  return b * (a.tokens - a.first_query) + t - a.first_query;
}

inline int64_t first_key(const TrainAttentionArgs& a, int64_t b, int64_t t) {
  return a.first_key != nullptr ? a.first_key[b * a.tokens + t] : 0;
}

void attention_train_forward(const TrainAttentionArgs& a, int64_t item_begin, int64_t item_end) {
  const int64_t D = a.head_dim, H = a.heads, KV = a.kv_heads, R = H / KV, T = a.tokens, G = a.group;
  const int64_t Tp = a.prefix_k != nullptr ? a.prefix_tokens : 0, lds = Tp + T + VW;
  const int64_t q0 = a.first_query, Tq = T - q0;
  float* scores = static_cast<float*>(std::malloc(static_cast<size_t>(4 * lds) * sizeof(float)));  // 4 query rows
  float* acc = static_cast<float*>(std::malloc(static_cast<size_t>(D + VW) * sizeof(float)));
  TransposedKeys tk(a);
  int64_t lo[4];
  for (int64_t item = item_begin; item < item_end; ++item) {
    const int64_t p = item / KV, g = item % KV;
    if (Tp > 0) {
      const KeySpan s0 = key_span(a, p * G, g);
      transpose_rows(s0.pk, s0.pstride, Tp, D, tk.pk, tk.pld);
    }
    for (int64_t b = p * G; b < (p + 1) * G; ++b) {
      prefetch_row(a, next_row(a, item, b, item_end), false);
      const KeySpan s = key_span(a, b, g);
      transpose_rows(s.k, s.stride, T, D, tk.k, tk.ld);
      for (int64_t t0 = q0; t0 < T; t0 += 4) {
        const int64_t nq = imin(4, T - t0), t_last = t0 + nq - 1;
        for (int64_t i = 0; i < nq; ++i) lo[i] = first_key(a, b, t0 + i);
        for (int64_t r = 0; r < R; ++r) {
          const int64_t h = g * R + r;
          row_tiles(a.q + query_row(a, b, t0) * a.q_stride + h * D, a.q_stride, nq, s, tk.k, tk.ld, tk.pk, tk.pld, lo,
                    t_last, D, scores, lds);
          for (int64_t i = 0; i < nq; ++i) {
            const int64_t t = t0 + i, own = t + 1 - lo[i], len = s.plen + own;
            float* sc = scores + i * lds;
            const float m = row_max(sc, len);
            const float total = exp_shift(sc, a.scale, a.scale * m, sc, len);  // softmax numerators
            if (s.plen > 0) weighted_rows(sc, 1, s.pv, s.pstride, s.plen, D, acc, false);
            weighted_rows(sc + s.plen, 1, s.v + lo[i] * s.stride, s.stride, own, D, acc, s.plen > 0);
            float* o = a.out + (query_row(a, b, t) * H + h) * D;
            scale_into(o, acc, 1.0f / total, D);
            a.lse[(b * H + h) * Tq + t - q0] = a.scale * m + __builtin_logf(total);
          }
        }
      }
    }
  }
  std::free(acc);
  std::free(scores);
}

// Score columns [j0, j1) of one query's backward row: prow[j] = P, srow[j] = scale * P * (dP - delta).
inline void p_ds_columns(const float* probs, const float* dp, float scale, float delta, int64_t j0, int64_t j1,
                         float* prow, float* srow) {
  const vf vscale = splat(scale), vdelta = splat(delta);
  for (int64_t j = j0; j < j1; j += VW) {
    const int64_t n = j1 - j;
    const vf pv = load_n(probs + j, n);
    store_n(prow + j, pv, n);
    store_n(srow + j, vscale * pv * (load_n(dp + j, n) - vdelta), n);
  }
}

// With P = softmax(scale * S) recomputed from the saved log-sum-exp: dV += P^T dO,
// dS = P * (dP - rowsum(P * dP)) with dP = dO V^T, dQ = scale * dS K, dK += scale * dS^T Q.
// Per (row, KV head), in blocks of queries: first each query's P and scale * dS rows over all of the
// row's keys (zero where it sees none) and its dQ; then each key's dK and dV over the block's
// queries, so every gradient row is summed in registers and stored once per block.
void attention_train_backward(const TrainAttentionArgs& a, int64_t item_begin, int64_t item_end) {
  const int64_t D = a.head_dim, H = a.heads, KV = a.kv_heads, R = H / KV, T = a.tokens, G = a.group;
  const int64_t Tp = a.prefix_k != nullptr ? a.prefix_tokens : 0, L = Tp + T;  // key columns: prefix, own
  const int64_t q0 = a.first_query, Tq = T - q0;
  // Query block: P and dS of R * block rows x L columns, about 1 MB each at most.
  const int64_t block = imax(1, imin(T, (int64_t{1} << 18) / (R * L)));
  const size_t mat = static_cast<size_t>(R * block * L + VW);
  float* P = static_cast<float*>(std::malloc(mat * sizeof(float)));   // [R][block][L]
  float* dS = static_cast<float*>(std::malloc(mat * sizeof(float)));  // [R][block][L], times scale
  const int64_t lds = L + VW;
  float* sbuf = static_cast<float*>(std::malloc(static_cast<size_t>(8 * lds) * sizeof(float)));  // 4 rows each
  float* dpbuf = sbuf + 4 * lds;
  const size_t row_bytes = static_cast<size_t>(D) * sizeof(float);
  const int64_t dkv = dkv_ld(a);
  TransposedKeys tk(a);
  int64_t lo[4];
  for (int64_t item = item_begin; item < item_end; ++item) {
    const int64_t p = item / KV, g = item % KV;
    if (Tp > 0) {
      const KeySpan s0 = key_span(a, p * G, g);
      transpose_rows(s0.pk, s0.pstride, Tp, D, tk.pk, tk.pld);
      transpose_rows(s0.pv, s0.pstride, Tp, D, tk.pv, tk.pld);
    }
    float* dpk = nullptr;
    float* dpv = nullptr;
    if (a.prefix_k != nullptr) {
      dpk = a.dprefix_k + (p * Tp * KV + g) * D;  // prefix key j: + j * KV * D
      dpv = a.dprefix_v + (p * Tp * KV + g) * D;
      for (int64_t j = 0; j < Tp; ++j) {
        std::memset(dpk + j * KV * D, 0, row_bytes);
        std::memset(dpv + j * KV * D, 0, row_bytes);
      }
    }
    for (int64_t b = p * G; b < (p + 1) * G; ++b) {
      prefetch_row(a, next_row(a, item, b, item_end), true);
      const KeySpan s = key_span(a, b, g);
      transpose_rows(s.k, s.stride, T, D, tk.k, tk.ld);
      transpose_rows(s.v, s.stride, T, D, tk.v, tk.ld);
      float* dk = a.dk + b * T * dkv + g * D;  // own key j: + j * dkv
      float* dv = a.dv + b * T * dkv + g * D;
      // Query position t's q and dO of query head g * R + r: + r * D.
      auto q_at = [&](int64_t t) { return a.q + query_row(a, b, t) * a.q_stride + g * R * D; };
      auto do_at = [&](int64_t t) { return a.dout + (query_row(a, b, t) * H + g * R) * D; };
      for (int64_t t0 = q0; t0 < T; t0 += block) {
        const int64_t t1 = imin(T, t0 + block);
        // 1. Rows of P and dS (columns: prefix keys 0..plen-1, then own keys at Tp + j), and dQ; the
        //    scores and dO V^T of 4 queries at a time.
        for (int64_t tt = t0; tt < t1; tt += 4) {
          const int64_t nq = imin(4, t1 - tt), t_last = tt + nq - 1;
          for (int64_t i = 0; i < nq; ++i) lo[i] = first_key(a, b, tt + i);
          for (int64_t r = 0; r < R; ++r) {
            const int64_t h = g * R + r;
            row_tiles(q_at(tt) + r * D, a.q_stride, nq, s, tk.k, tk.ld, tk.pk, tk.pld, lo, t_last, D, sbuf, lds);
            row_tiles(do_at(tt) + r * D, H * D, nq, s, tk.v, tk.ld, tk.pv, tk.pld, lo, t_last, D, dpbuf, lds);
            for (int64_t i = 0; i < nq; ++i) {
              const int64_t t = tt + i, own = t + 1 - lo[i], len = s.plen + own;
              float* prow = P + (r * block + t - t0) * L;
              float* srow = dS + (r * block + t - t0) * L;
              std::memset(prow, 0, static_cast<size_t>(L) * sizeof(float));
              std::memset(srow, 0, static_cast<size_t>(L) * sizeof(float));
              float* probs = sbuf + i * lds;
              const float* dp = dpbuf + i * lds;
              exp_shift(probs, a.scale, a.lse[(b * H + h) * Tq + t - q0], probs, len);
              // rowsum(dO * O) = rowsum(P * dP) (O = P V, dP = dO V^T): no read of O
              const float delta = hsum(dot_lanes(probs, dp, len));
              // Prefix keys j < plen go to column j, own keys to Tp + lo + (j - plen).
              p_ds_columns(probs, dp, a.scale, delta, 0, s.plen, prow, srow);
              p_ds_columns(probs, dp, a.scale, delta, s.plen, len, prow + Tp + lo[i] - s.plen,
                           srow + Tp + lo[i] - s.plen);
              float* dq = a.dq + query_row(a, b, t) * dq_ld(a) + h * D;
              if (s.plen > 0) weighted_rows(srow, 1, s.pk, s.pstride, s.plen, D, dq, false);
              weighted_rows(srow + Tp + lo[i], 1, s.k + lo[i] * s.stride, s.stride, own, D, dq, s.plen > 0);
            }
          }
        }
        // 2. dK, dV of the keys this block's queries see: own keys j < t1 (queries t >= j), prefix keys.
        for (int64_t c = 0; c < Tp + t1; ++c) {
          const bool in_prefix = c < Tp;
          if (in_prefix && c >= s.plen) continue;  // a prefix key this row does not see
          const int64_t j = in_prefix ? c : c - Tp, first = in_prefix ? t0 : imax(t0, j);
          float* dkj = in_prefix ? dpk + j * KV * D : dk + j * dkv;
          float* dvj = in_prefix ? dpv + j * KV * D : dv + j * dkv;
          // Own key rows are written by their first block (t0 <= j < t1; keys before the first
          // query by the first block), accumulated after; prefix rows accumulate over blocks and
          // the group's rows (zeroed above).
          bool add = in_prefix || (j < t0 && t0 > q0);
          for (int64_t r = 0; r < R; ++r, add = true) {
            const int64_t rows = t1 - first, off = (r * block + first - t0) * L + c;
            weighted_rows(P + off, L, do_at(first) + r * D, H * D, rows, D, dvj, add);
            weighted_rows(dS + off, L, q_at(first) + r * D, a.q_stride, rows, D, dkj, add);
          }
        }
      }
    }
  }
  std::free(sbuf);
  std::free(dS);
  std::free(P);
}

// ---- element-wise backward -------------------------------------------------------------------
// y = w * x * r, r = 1 / sqrt(mean(x^2) + eps): with g = dy * w, dx = r * g - x * r^3 * mean(g * x)
// (+ dres, added last as autograd would add the two gradients of x).
void rms_norm_backward(const float* x, const float* w, const float* dy, const float* dres, int64_t rows, int64_t dim,
                       float eps, float* dx, float* dw) {
  for (int64_t row = 0; row < rows; ++row) {
    const float* xr = x + row * dim;
    const float* dyr = dy + row * dim;
    float* dxr = dx + row * dim;
    vf sq = {}, gx = {};
    for (int64_t i = 0; i < dim; i += VW) {  // as the forward: lane sums, then hsum
      const int64_t n = dim - i;
      const vf xv = load_n(xr + i, n);
      sq += xv * xv;
      gx += load_n(dyr + i, n) * load_n(w + i, n) * xv;
    }
    const float r = 1.0f / __builtin_sqrtf(hsum(sq) / static_cast<float>(dim) + eps);
    const vf rv = splat(r), cv = splat(r * r * r * hsum(gx) / static_cast<float>(dim));
    for (int64_t i = 0; i < dim; i += VW) {
      const int64_t n = dim - i;
      const vf xv = load_n(xr + i, n), dyv = load_n(dyr + i, n);
      const vf d = rv * (dyv * load_n(w + i, n)) - xv * cv;
      store_n(dxr + i, dres != nullptr ? d + load_n(dres + row * dim + i, n) : d, n);
      if (dw != nullptr) store_n(dw + i, load_n(dw + i, n) + dyv * (xv * rv), n);
    }
  }
}

// out = g * s(g) * u with s the sigmoid: dg = dy * u * s * (1 + g * (1 - s)), du = dy * g * s.
void silu_mul_backward(const float* gu, const float* dy, float* dgu, int64_t rows, int64_t inter) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gu + r * 2 * inter;
    const float* u = g + inter;
    const float* d = dy + r * inter;
    float* dg = dgu + r * 2 * inter;
    float* du = dg + inter;
    for (int64_t i = 0; i < inter; i += VW) {
      const int64_t m = inter - i;
      const vf gv = load_n(g + i, m), uv = load_n(u + i, m), dyv = load_n(d + i, m);
      const vf s = 1.0f / (1.0f + vexp(-gv));
      store_n(dg + i, dyv * uv * s * (1.0f + gv * (1.0f - s)), m);
      store_n(du + i, dyv * gv * s, m);
    }
  }
}

// ---- optimizer ---------------------------------------------------------------------------------
// sqrt and a * b + c with one rounding, lane by lane (the generic table without FMA hardware calls
// fmaf, which rounds once too: the same bits on every instruction set, and ATen's where its CPU
// kernels use FMA, i.e. on AVX2 and AVX-512 machines).
#if R1_VEC_WIDTH == 16 && defined(__AVX512F__)
inline vf vsqrt(vf v) { return (vf)_mm512_sqrt_ps((__m512)v); }
inline vf vfma(vf a, vf b, vf c) { return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c); }
#elif R1_VEC_WIDTH == 8 && defined(__AVX__) && defined(__FMA__)
inline vf vsqrt(vf v) { return (vf)_mm256_sqrt_ps((__m256)v); }
inline vf vfma(vf a, vf b, vf c) { return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c); }
#else
inline vf vsqrt(vf v) {
  for (int l = 0; l < VW; ++l) v[l] = __builtin_sqrtf(v[l]);
  return v;
}
inline vf vfma(vf a, vf b, vf c) {
  for (int l = 0; l < VW; ++l) c[l] = __builtin_fmaf(a[l], b[l], c[l]);
  return c;
}
#endif

// torch::optim::AdamW element by element, rounded where ATen's ops round (its vectorised add with
// alpha and addcmul are fused multiply-adds): p *= 1 - lr wd; m = fma(g, 1 - b1, m b1);
// v = fma((1 - b2) g, g, v b2); p += ((-lr / bc1) m) / (sqrt(v) / sqrt(bc2) + eps).
void adamw(const AdamWArgs& a, int64_t begin, int64_t end) {
  const vf one_minus_beta1 = splat(a.one_minus_beta1), one_minus_beta2 = splat(a.one_minus_beta2);
  for (int64_t i = begin; i < end; i += VW) {
    const int64_t n = end - i;
    const vf g = load_n(a.grad + i, n);
    vf p = load_n(a.param + i, n);
    if (a.decay) p = p * a.decay_factor;
    const vf m = vfma(g, one_minus_beta1, load_n(a.exp_avg + i, n) * a.beta1);
    const vf v = vfma(one_minus_beta2 * g, g, load_n(a.exp_avg_sq + i, n) * a.beta2);
    const vf denom = vsqrt(v) / a.sqrt_bias_correction2 + a.eps;
    p = p + a.neg_step_size * m / denom;
    store_n(a.param + i, p, n);
    store_n(a.exp_avg + i, m, n);
    store_n(a.exp_avg_sq + i, v, n);
  }
}

}  // namespace
