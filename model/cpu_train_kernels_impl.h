// The training kernels of model/cpu_kernels.h (forward and backward of model/train_ops.h), over the
// vector type and helpers of cpu_kernels_impl.h. Included by cpu_kernels_impl.h inside its kernel
// namespace, once per instruction set; nothing else includes it.
namespace {

inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
inline vf load_n(const float* p, int64_t n) { return n >= VW ? load(p) : load_part(p, n); }
inline void store_n(float* p, vf v, int64_t n) {
  if (n >= VW)
    store(p, v);
  else
    store_part(p, v, n);
}

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

inline int64_t first_key(const TrainAttentionArgs& a, int64_t b, int64_t t) {
  return a.first_key != nullptr ? a.first_key[b * a.tokens + t] : 0;
}

// Unscaled scores of q over the row's keys: prefix first, then own keys lo..lo+own-1.
inline void row_scores(const float* q, const KeySpan& s, int64_t lo, int64_t own, int64_t d, float* out) {
  if (s.plen > 0) dots(q, s.pk, s.pstride, s.plen, d, out);
  dots(q, s.k + lo * s.stride, s.stride, own, d, out + s.plen);
}

void attention_train_forward(const TrainAttentionArgs& a, int64_t item_begin, int64_t item_end) {
  const int64_t D = a.head_dim, H = a.heads, KV = a.kv_heads, R = H / KV, T = a.tokens, G = a.group;
  const int64_t longest = T + (a.prefix_k != nullptr ? a.prefix_tokens : 0);
  float* scores = static_cast<float*>(std::malloc(static_cast<size_t>(longest + VW) * sizeof(float)));
  float* acc = static_cast<float*>(std::malloc(static_cast<size_t>(D + VW) * sizeof(float)));
  for (int64_t item = item_begin; item < item_end; ++item) {
    const int64_t p = item / KV, g = item % KV;
    for (int64_t b = p * G; b < (p + 1) * G; ++b) {
      const KeySpan s = key_span(a, b, g);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t lo = first_key(a, b, t), own = t + 1 - lo, len = s.plen + own;
        for (int64_t r = 0; r < R; ++r) {
          const int64_t h = g * R + r;
          row_scores(a.q + (b * T + t) * a.q_stride + h * D, s, lo, own, D, scores);
          float m = -3.4e38f;
          for (int64_t j = 0; j < len; ++j) m = scores[j] > m ? scores[j] : m;
          const float total = exp_shift(scores, a.scale, a.scale * m, scores, len);  // softmax numerators
          if (s.plen > 0) weighted_rows(scores, 1, s.pv, s.pstride, s.plen, D, acc, false);
          weighted_rows(scores + s.plen, 1, s.v + lo * s.stride, s.stride, own, D, acc, s.plen > 0);
          float* o = a.out + ((b * T + t) * H + h) * D;
          const float inv = 1.0f / total;
          for (int64_t i = 0; i < D; ++i) o[i] = acc[i] * inv;
          a.lse[(b * H + h) * T + t] = a.scale * m + __builtin_logf(total);
        }
      }
    }
  }
  std::free(acc);
  std::free(scores);
}

// With P = softmax(scale * S) recomputed from the saved log-sum-exp: dV += P^T dO,
// dS = P * (dO V^T - rowsum(dO * O)), dQ = scale * dS K, dK += scale * dS^T Q.
// Per (row, KV head), in blocks of queries: first each query's P and scale * dS rows over all of the
// row's keys (zero where it sees none) and its dQ; then each key's dK and dV over the block's
// queries, so every gradient row is summed in registers and stored once per block.
void attention_train_backward(const TrainAttentionArgs& a, int64_t item_begin, int64_t item_end) {
  const int64_t D = a.head_dim, H = a.heads, KV = a.kv_heads, R = H / KV, T = a.tokens, G = a.group;
  const int64_t Tp = a.prefix_k != nullptr ? a.prefix_tokens : 0, L = Tp + T;  // key columns: prefix, own
  // Query block: P and dS of R * block rows x L columns, about 1 MB each at most.
  const int64_t block = imax(1, imin(T, (int64_t{1} << 18) / (R * L)));
  const size_t mat = static_cast<size_t>(R * block * L + VW);
  float* P = static_cast<float*>(std::malloc(mat * sizeof(float)));   // [R][block][L]
  float* dS = static_cast<float*>(std::malloc(mat * sizeof(float)));  // [R][block][L], times scale
  float* dp = static_cast<float*>(std::malloc(static_cast<size_t>(L + VW) * sizeof(float)));
  const size_t row_bytes = static_cast<size_t>(D) * sizeof(float);
  for (int64_t item = item_begin; item < item_end; ++item) {
    const int64_t p = item / KV, g = item % KV;
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
      const KeySpan s = key_span(a, b, g);
      float* dk = a.dk + (b * T * KV + g) * D;  // own key j: + j * KV * D
      float* dv = a.dv + (b * T * KV + g) * D;
      const float* q_row = a.q + b * T * a.q_stride + g * R * D;  // query (t, r): + t * q_stride + r * D
      const float* do_row = a.dout + (b * T * H + g * R) * D;     // dO (t, r): + t * H * D + r * D
      for (int64_t t0 = 0; t0 < T; t0 += block) {
        const int64_t t1 = imin(T, t0 + block);
        // 1. Rows of P and dS (columns: prefix keys 0..plen-1, then own keys at Tp + j), and dQ.
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t lo = first_key(a, b, t), own = t + 1 - lo, len = s.plen + own;
          for (int64_t r = 0; r < R; ++r) {
            const int64_t h = g * R + r, at = ((b * T + t) * H + h) * D;
            float* prow = P + (r * block + t - t0) * L;
            float* srow = dS + (r * block + t - t0) * L;
            std::memset(prow, 0, static_cast<size_t>(L) * sizeof(float));
            std::memset(srow, 0, static_cast<size_t>(L) * sizeof(float));
            float* pown = prow + Tp + lo;  // own keys lo..t
            float* sown = srow + Tp + lo;
            const float* q = q_row + t * a.q_stride + r * D;
            const float* dout = a.dout + at;
            const float delta = hsum(dot_lanes(dout, a.out + at, D));  // rowsum(dO * O)
            const float lse = a.lse[(b * H + h) * T + t];
            if (s.plen > 0) {
              dots(q, s.pk, s.pstride, s.plen, D, prow);
              exp_shift(prow, a.scale, lse, prow, s.plen);
              dots(dout, s.pv, s.pstride, s.plen, D, dp);
            }
            dots(q, s.k + lo * s.stride, s.stride, own, D, pown);
            exp_shift(pown, a.scale, lse, pown, own);
            dots(dout, s.v + lo * s.stride, s.stride, own, D, dp + s.plen);
            for (int64_t j = 0; j < len; ++j) {
              const int64_t c = j < s.plen ? j : Tp + lo + j - s.plen;
              srow[c] = a.scale * prow[c] * (dp[j] - delta);
            }
            float* dq = a.dq + at;
            if (s.plen > 0) weighted_rows(srow, 1, s.pk, s.pstride, s.plen, D, dq, false);
            weighted_rows(sown, 1, s.k + lo * s.stride, s.stride, own, D, dq, s.plen > 0);
          }
        }
        // 2. dK, dV of the keys this block's queries see: own keys j < t1 (queries t >= j), prefix keys.
        for (int64_t c = 0; c < Tp + t1; ++c) {
          const bool in_prefix = c < Tp;
          if (in_prefix && c >= s.plen) continue;  // a prefix key this row does not see
          const int64_t j = in_prefix ? c : c - Tp, first = in_prefix ? t0 : imax(t0, j);
          float* dkj = in_prefix ? dpk + j * KV * D : dk + j * KV * D;
          float* dvj = in_prefix ? dpv + j * KV * D : dv + j * KV * D;
          // Own key rows are written by their first block (t0 <= j < t1), accumulated after;
          // prefix rows accumulate over blocks and the group's rows (zeroed above).
          bool add = in_prefix || j < t0;
          for (int64_t r = 0; r < R; ++r, add = true) {
            const int64_t rows = t1 - first, off = (r * block + first - t0) * L + c;
            weighted_rows(P + off, L, do_row + first * H * D + r * D, H * D, rows, D, dvj, add);
            weighted_rows(dS + off, L, q_row + first * a.q_stride + r * D, a.q_stride, rows, D, dkj, add);
          }
        }
      }
    }
  }
  std::free(dp);
  std::free(dS);
  std::free(P);
}

// ---- element-wise backward -------------------------------------------------------------------
// y = w * x * r, r = 1 / sqrt(mean(x^2) + eps): with g = dy * w, dx = r * g - x * r^3 * mean(g * x).
void rms_norm_backward(const float* x, const float* w, const float* dy, int64_t rows, int64_t dim, float eps,
                       float* dx, float* dw) {
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
      store_n(dxr + i, rv * (dyv * load_n(w + i, n)) - xv * cv, n);
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

}  // namespace
