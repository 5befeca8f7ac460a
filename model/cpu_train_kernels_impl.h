// The training kernels of model/cpu_kernels.h (forward and backward of model/train_ops.h), over the
// vector type and helpers of cpu_kernels_impl.h. Included by cpu_kernels_impl.h inside its kernel
// namespace, once per instruction set; nothing else includes it.
namespace {

inline vf load_n(const float* p, int64_t n) { return n >= VW ? load(p) : load_part(p, n); }
inline void store_n(float* p, vf v, int64_t n) {
  if (n >= VW)
    store(p, v);
  else
    store_part(p, v, n);
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
          std::memset(acc, 0, static_cast<size_t>(D) * sizeof(float));
          for (int64_t j = 0; j < s.plen; ++j) axpy(acc, scores[j], s.pv + j * s.pstride, D);
          for (int64_t j = 0; j < own; ++j) axpy(acc, scores[s.plen + j], s.v + (lo + j) * s.stride, D);
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
void attention_train_backward(const TrainAttentionArgs& a, int64_t item_begin, int64_t item_end) {
  const int64_t D = a.head_dim, H = a.heads, KV = a.kv_heads, R = H / KV, T = a.tokens, G = a.group;
  const int64_t longest = T + (a.prefix_k != nullptr ? a.prefix_tokens : 0);
  float* probs = static_cast<float*>(std::malloc(static_cast<size_t>(longest + VW) * sizeof(float)));
  float* dp = static_cast<float*>(std::malloc(static_cast<size_t>(longest + VW) * sizeof(float)));
  float* dq = static_cast<float*>(std::malloc(static_cast<size_t>(D + VW) * sizeof(float)));
  const size_t row_bytes = static_cast<size_t>(D) * sizeof(float);
  for (int64_t item = item_begin; item < item_end; ++item) {
    const int64_t p = item / KV, g = item % KV;
    float* dpk = nullptr;
    float* dpv = nullptr;
    if (a.prefix_k != nullptr) {
      dpk = a.dprefix_k + (p * a.prefix_tokens * KV + g) * D;  // prefix key j: + j * KV * D
      dpv = a.dprefix_v + (p * a.prefix_tokens * KV + g) * D;
      for (int64_t j = 0; j < a.prefix_tokens; ++j) {
        std::memset(dpk + j * KV * D, 0, row_bytes);
        std::memset(dpv + j * KV * D, 0, row_bytes);
      }
    }
    for (int64_t b = p * G; b < (p + 1) * G; ++b) {
      const KeySpan s = key_span(a, b, g);
      float* dk = a.dk + (b * T * KV + g) * D;  // own key j: + j * KV * D
      float* dv = a.dv + (b * T * KV + g) * D;
      for (int64_t j = 0; j < T; ++j) {
        std::memset(dk + j * KV * D, 0, row_bytes);
        std::memset(dv + j * KV * D, 0, row_bytes);
      }
      for (int64_t t = 0; t < T; ++t) {
        const int64_t lo = first_key(a, b, t), own = t + 1 - lo, len = s.plen + own;
        for (int64_t r = 0; r < R; ++r) {
          const int64_t h = g * R + r, at = ((b * T + t) * H + h) * D;
          const float* q = a.q + (b * T + t) * a.q_stride + h * D;
          const float* dout = a.dout + at;
          const float delta = hsum(dot_lanes(dout, a.out + at, D));  // rowsum(dO * O)
          row_scores(q, s, lo, own, D, probs);
          exp_shift(probs, a.scale, a.lse[(b * H + h) * T + t], probs, len);
          if (s.plen > 0) dots(dout, s.pv, s.pstride, s.plen, D, dp);
          dots(dout, s.v + lo * s.stride, s.stride, own, D, dp + s.plen);
          std::memset(dq, 0, row_bytes);
          for (int64_t j = 0; j < len; ++j) {
            const float pj = probs[j], ds = a.scale * pj * (dp[j] - delta);
            const bool in_prefix = j < s.plen;
            const int64_t jj = in_prefix ? j : lo + j - s.plen;
            axpy(in_prefix ? dpv + jj * KV * D : dv + jj * KV * D, pj, dout, D);
            axpy(in_prefix ? dpk + jj * KV * D : dk + jj * KV * D, ds, q, D);
            axpy(dq, ds, in_prefix ? s.pk + jj * s.pstride : s.k + jj * s.stride, D);
          }
          std::memcpy(a.dq + at, dq, row_bytes);
        }
      }
    }
  }
  std::free(dq);
  std::free(dp);
  std::free(probs);
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
