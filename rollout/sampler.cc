#include "rollout/sampler.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/hash.h"
#include "model/cpu_kernels.h"

namespace r1kit {

void SamplingOptions::validate() const {
  R1_CHECK(std::isfinite(temperature) && temperature >= 0, "sampling: temperature must be >= 0, got ", temperature);
  R1_CHECK(top_p > 0 && top_p <= 1, "sampling: top_p must be in (0, 1], got ", top_p);
  R1_CHECK(top_k >= 0, "sampling: top_k must be >= 0 (0 = off), got ", top_k);
  R1_CHECK(min_p >= 0 && min_p <= 1, "sampling: min_p must be in [0, 1], got ", min_p);
  R1_CHECK(std::isfinite(repetition_penalty) && repetition_penalty > 0,
           "sampling: repetition_penalty must be > 0, got ", repetition_penalty);
  R1_CHECK(max_new_tokens >= 1, "sampling: max_new_tokens must be >= 1, got ", max_new_tokens);
  for (int64_t id : stop_token_ids) R1_CHECK(id >= 0, "sampling: stop_token_ids has a negative id ", id);
  for (const auto& s : stop_strings) R1_CHECK(!s.empty(), "sampling: stop_strings has an empty string");
}

namespace {

// Rows of `t` listed in `idx` (all rows when idx covers them in order: no copy).
torch::Tensor rows_of(const torch::Tensor& t, const torch::Tensor& idx, bool all) {
  return all ? t : t.index_select(0, idx);
}

// Inverse-CDF draw from unnormalised non-negative weights w [m, K]: the first column whose
// cumulative weight exceeds u * total. Columns with weight 0 are never chosen.
torch::Tensor draw_from_weights(const torch::Tensor& w, const torch::Tensor& u) {
  auto cdf = w.cumsum(1);
  auto target = cdf.select(1, w.size(1) - 1).mul(u).unsqueeze(1);
  return cdf.le(target).sum(1).clamp_max(w.size(1) - 1);
}

}  // namespace

uint64_t derive_seed(uint64_t seed, uint64_t index) { return splitmix64(splitmix64(seed) ^ (index * 0xD1B54A32D192ED03ull)); }

double counter_uniform(uint64_t seed, uint64_t sample_index, uint64_t step) {
  uint64_t x = splitmix64(seed);
  x = splitmix64(x ^ ((sample_index + 1) * 0xD1B54A32D192ED03ull));
  x = splitmix64(x ^ ((step + 1) * 0xABC98388FB8FAC03ull));
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

namespace {

// Any mix of options, on any device, with tensor ops.
SampledTokens sample_general(const torch::Tensor& logits, const std::vector<SampleRow>& rows, const torch::Tensor& seen) {
  const int64_t n = logits.size(0), V = logits.size(1);
  SampledTokens out;
  const auto dev = logits.device();

  // Per-row parameters, gathered on the host (one small transfer each).
  std::vector<float> inv_t(n), penalty(n), top_p(n), min_p(n), u(n);
  std::vector<int64_t> top_k(n), greedy_rows, plain_rows, trunc_rows;
  bool any_penalty = false, any_temp = false, any_min_p = false, any_top_p = false;
  int64_t max_top_k = 0;
  for (int64_t i = 0; i < n; ++i) {
    const SamplingOptions* o = rows[i].options;
    const bool greedy = o->greedy();
    inv_t[i] = greedy ? 1.0f : static_cast<float>(1.0 / o->temperature);
    any_temp |= inv_t[i] != 1.0f;
    penalty[i] = static_cast<float>(o->repetition_penalty);
    any_penalty |= o->repetition_penalty != 1.0;
    top_k[i] = (o->top_k > 0 && o->top_k < V) ? o->top_k : 0;
    top_p[i] = o->top_p < 1.0 ? static_cast<float>(o->top_p) : 2.0f;  // 2: never truncates
    min_p[i] = static_cast<float>(o->min_p);
    // Strictly below 1 so that u * total < total: the draw never runs past the last kept token.
    u[i] = std::min(static_cast<float>(counter_uniform(rows[i].seed, rows[i].sample_index, rows[i].step)),
                    1.0f - 0x1.0p-20f);
    if (greedy) {
      greedy_rows.push_back(i);
    } else if (top_k[i] > 0 || o->top_p < 1.0) {
      trunc_rows.push_back(i);
      max_top_k = std::max(max_top_k, top_k[i]);
      any_top_p |= o->top_p < 1.0;
      any_min_p |= o->min_p > 0;
    } else {
      plain_rows.push_back(i);
      any_min_p |= o->min_p > 0;
    }
  }
  auto column = [&](std::vector<float>& v) { return torch::from_blob(v.data(), {n, 1}, torch::kFloat).to(dev, /*non_blocking=*/false, /*copy=*/true); };
  auto index = [&](const std::vector<int64_t>& v) {
    return torch::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, torch::kLong).to(dev, false, true);
  };

  // The reported log-prob's distribution: softmax(logits / T).
  const torch::Tensor inv_t_col = any_temp ? column(inv_t) : torch::Tensor();
  const torch::Tensor scaled = any_temp ? logits * inv_t_col : logits;
  const torch::Tensor lse = scaled.logsumexp(1, /*keepdim=*/true);

  // The distribution tokens are drawn from: penalised, then scaled.
  torch::Tensor work = scaled, work_lse = lse;
  if (any_penalty) {
    R1_CHECK(seen.defined() && seen.sizes() == logits.sizes(), "sample_tokens: repetition_penalty needs a seen mask [n, V]");
    auto pen = column(penalty);
    auto penalised = torch::where(seen, torch::where(logits > 0, logits / pen, logits * pen), logits);
    work = any_temp ? penalised * inv_t_col : penalised;
    work_lse = work.logsumexp(1, true);
  }

  torch::Tensor tokens = torch::empty({n}, torch::TensorOptions().dtype(torch::kLong).device(dev));
  if (!greedy_rows.empty()) {
    const bool all = static_cast<int64_t>(greedy_rows.size()) == n;
    auto idx = all ? torch::Tensor() : index(greedy_rows);
    auto tok = rows_of(work, idx, all).argmax(1);
    if (all) tokens = tok; else tokens.index_copy_(0, idx, tok);
  }
  torch::Tensor u_col = (plain_rows.empty() && trunc_rows.empty()) ? torch::Tensor() : column(u);
  torch::Tensor min_p_col = any_min_p ? column(min_p) : torch::Tensor();

  if (!plain_rows.empty()) {
    const bool all = static_cast<int64_t>(plain_rows.size()) == n;
    auto idx = all ? torch::Tensor() : index(plain_rows);
    auto probs = (rows_of(work, idx, all) - rows_of(work_lse, idx, all)).exp_();
    if (any_min_p) {
      auto thr = probs.amax(1, true) * rows_of(min_p_col, idx, all);
      probs.masked_fill_(probs < thr, 0.0f);
    }
    auto tok = draw_from_weights(probs, rows_of(u_col, idx, all).squeeze(1));
    if (all) tokens = tok; else tokens.index_copy_(0, idx, tok);
  }

  if (!trunc_rows.empty()) {
    const bool all = static_cast<int64_t>(trunc_rows.size()) == n;
    auto idx = all ? torch::Tensor() : index(trunc_rows);
    auto probs = (rows_of(work, idx, all) - rows_of(work_lse, idx, all)).exp_();
    auto tk = torch::from_blob(top_k.data(), {n, 1}, torch::kLong).to(dev, false, true);
    auto tp = column(top_p);
    tk = rows_of(tk, idx, all);
    tp = rows_of(tp, idx, all);
    // Candidates: the top K tokens, K >= every row's top_k. A top-p-only row is covered when the
    // candidates hold at least top_p of its mass; otherwise sort the whole vocabulary.
    int64_t K = std::min<int64_t>(V, std::max<int64_t>(max_top_k, 256));
    torch::Tensor vals, cand;
    if (K < V) {
      std::tie(vals, cand) = probs.topk(K, 1, /*largest=*/true, /*sorted=*/true);
      bool covered = true;
      auto mass = vals.sum(1).cpu();
      for (size_t r = 0; r < trunc_rows.size() && covered; ++r) {
        const int64_t i = trunc_rows[r];
        if (top_k[i] == 0 && mass[r].item<float>() < top_p[i]) covered = false;
      }
      if (!covered) K = V;
    }
    if (K == V) std::tie(vals, cand) = probs.sort(1, /*descending=*/true);
    auto pos = torch::arange(K, torch::TensorOptions().dtype(torch::kLong).device(dev)).unsqueeze(0);
    auto keep = (tk == 0).logical_or(pos < tk);  // top-k
    auto kept = vals * keep;
    if (any_top_p) {  // exclusive cumulative mass of the top-k renormalised distribution < top_p
      auto excl = (kept.cumsum(1) - kept) / kept.sum(1, true);
      keep.logical_and_(excl < tp);
    }
    if (any_min_p) keep.logical_and_(vals >= vals.narrow(1, 0, 1) * rows_of(min_p_col, idx, all));
    auto j = draw_from_weights(vals * keep, rows_of(u_col, idx, all).squeeze(1));
    auto tok = cand.gather(1, j.unsqueeze(1)).squeeze(1);
    if (all) tokens = tok; else tokens.index_copy_(0, idx, tok);
  }

  auto logprobs = (scaled.gather(1, tokens.unsqueeze(1)) - lse).squeeze(1);
  auto tok_cpu = tokens.to(torch::kCPU).contiguous();
  auto lp_cpu = logprobs.to(torch::kCPU).contiguous();
  out.tokens.assign(tok_cpu.data_ptr<int64_t>(), tok_cpu.data_ptr<int64_t>() + n);
  out.logprobs.assign(lp_cpu.data_ptr<float>(), lp_cpu.data_ptr<float>() + n);
  return out;
}

// Greedy and plain sampling rows (temperature and min-p only) on the CPU, the common GRPO and
// evaluation cases: per row one max pass and one exp pass over the logits (model/cpu_kernels.h),
// no [n, V] temporaries and no sort. A plain row draws the same token as sample_general's inverse
// CDF in vocabulary order (up to float rounding of the running sum).
void sample_rows_cpu(const torch::Tensor& logits, const std::vector<SampleRow>& rows,
                     const std::vector<int64_t>& which, SampledTokens& out) {
  const int64_t k = static_cast<int64_t>(which.size()), V = logits.size(1);
  const torch::Tensor x = logits.contiguous();
  const float* base = x.data_ptr<float>();
  const auto& kernels = cpu::kernels();
  at::parallel_for(0, k, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> e(V);  // exp(x / T - max / T) of the row being drawn
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = which[r];
      const SampleRow& row = rows[i];
      const float* xr = base + i * V;
      float max;
      int64_t argmax;
      kernels.max_argmax(xr, V, &max, &argmax);
      const bool greedy = row.options->greedy();
      // Scaling by 1/T is monotonic, so max(x / T) = max(x) / T.
      const float inv_t = greedy ? 1.0f : static_cast<float>(1.0 / row.options->temperature);
      const float shift = max * inv_t;
      const float sum = kernels.exp_shift(xr, inv_t, shift, e.data(), V);  // e_j = p_j / p_max
      int64_t tok = argmax;
      if (!greedy) {
        const float min_p = static_cast<float>(row.options->min_p);
        double total = sum;
        if (min_p > 0) {  // kept iff p_j >= min_p * p_max, i.e. e_j >= min_p
          total = 0;
          for (int64_t j = 0; j < V; ++j) total += e[j] >= min_p ? e[j] : 0.0f;
        }
        const double u = std::min(counter_uniform(row.seed, row.sample_index, row.step), 1.0 - 0x1.0p-20);
        const double target = u * total;
        double acc = 0;
        int64_t last_kept = argmax;
        tok = -1;
        for (int64_t j = 0; j < V; ++j) {
          const float w = e[j];
          if (w <= 0.0f || w < min_p) continue;
          last_kept = j;
          acc += w;
          if (acc > target) {
            tok = j;
            break;
          }
        }
        if (tok < 0) tok = last_kept;  // rounding of the total: the mass ran out at the last kept token
      }
      out.tokens[i] = tok;
      out.logprobs[i] = xr[tok] * inv_t - shift - std::log(sum);
    }
  });
}

}  // namespace

SampledTokens sample_tokens(const torch::Tensor& logits_in, const std::vector<SampleRow>& rows,
                            const torch::Tensor& seen) {
  R1_CHECK(logits_in.dim() == 2, "sample_tokens: logits must be [n, V], got ", logits_in.sizes());
  const int64_t n = logits_in.size(0);
  R1_CHECK(n == static_cast<int64_t>(rows.size()), "sample_tokens: ", n, " logit rows for ", rows.size(), " sample rows");
  SampledTokens out;
  if (n == 0) return out;
  for (int64_t i = 0; i < n; ++i) R1_CHECK(rows[i].options != nullptr, "sample_tokens: row ", i, " has no options");
  const auto logits = logits_in.to(torch::kFloat);
  // Each row's path depends only on its own options, so its draw never depends on its neighbours.
  std::vector<int64_t> plain, general;
  for (int64_t i = 0; i < n; ++i) {
    const SamplingOptions& o = *rows[i].options;
    const bool is_plain = logits.is_cpu() && o.repetition_penalty == 1.0 &&
                          (o.greedy() || (o.top_p >= 1.0 && (o.top_k == 0 || o.top_k >= logits.size(1))));
    (is_plain ? plain : general).push_back(i);
  }
  if (general.size() == static_cast<size_t>(n)) return sample_general(logits, rows, seen);
  out.tokens.resize(n);
  out.logprobs.resize(n);
  sample_rows_cpu(logits, rows, plain, out);
  if (!general.empty()) {
    auto idx = torch::tensor(general, torch::kLong);
    std::vector<SampleRow> sub;
    for (int64_t i : general) sub.push_back(rows[i]);
    SampledTokens g = sample_general(logits.index_select(0, idx), sub,
                                     seen.defined() ? seen.index_select(0, idx) : torch::Tensor());
    for (size_t r = 0; r < general.size(); ++r) {
      out.tokens[general[r]] = g.tokens[r];
      out.logprobs[general[r]] = g.logprobs[r];
    }
  }
  return out;
}

}  // namespace r1kit
