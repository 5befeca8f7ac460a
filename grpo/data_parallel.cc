#include "grpo/data_parallel.h"

#include <torch/torch.h>

#include <cstdlib>

#include "core/check.h"
#include "core/logging.h"

namespace r1kit::grpo {

DataParallel DataParallel::from_env(torch::Device device) {
  DistEnv env = read_dist_env();
  if (env.world_size <= 1) return DataParallel();
  std::chrono::milliseconds timeout = std::chrono::minutes(5);
  if (const char* t = std::getenv("R1_DIST_TIMEOUT_S")) timeout = std::chrono::milliseconds(std::atoll(t) * 1000);
  spdlog::info("data parallel: rank {} of {} ({}), rendezvous at {}:{}", env.rank, env.world_size, env.source,
               env.master_addr, env.master_port);
  return DataParallel(ProcessGroup::create(env, device, timeout));
}

std::pair<int64_t, int64_t> DataParallel::shard(int64_t n) const {
  const int64_t w = world_size(), r = rank();
  R1_CHECK(n % w == 0, "data parallel: ", n, " items do not split evenly over ", w, " ranks");
  return {r * n / w, (r + 1) * n / w};
}

void DataParallel::broadcast_parameters(Transformer& model) const {
  if (!pg_) return;
  std::vector<torch::Tensor> params;
  for (auto& p : model->parameters()) params.push_back(p);
  pg_->broadcast(params, 0);
}

void DataParallel::all_reduce(LossNormalizer& n) const {
  if (!pg_) return;
  std::vector<double> v = pg_->all_reduce_sum(
      {static_cast<double>(n.num_rows), n.num_tokens, static_cast<double>(n.num_nonempty_rows)});
  n.num_rows = static_cast<int64_t>(v[0]);
  n.num_tokens = v[1];
  n.num_nonempty_rows = static_cast<int64_t>(v[2]);
}

void DataParallel::all_reduce_grads(MasterWeights& optimizer) const {
  if (!pg_) return;
  optimizer.accumulate_grads();  // bf16 parameter grads -> fp32 master grads first
  const auto& masters = optimizer.masters();
  // Which parameters have a gradient on any rank: those take part everywhere (zeros where a rank
  // has none, so buckets line up); the rest keep no gradient and AdamW skips them, as in one process.
  std::vector<double> has(masters.size());
  for (size_t i = 0; i < masters.size(); ++i) has[i] = masters[i].grad().defined() ? 1.0 : 0.0;
  has = pg_->all_reduce_sum(has);
  std::vector<torch::Tensor> grads;
  for (size_t i = 0; i < masters.size(); ++i) {
    if (has[i] == 0) continue;
    torch::Tensor m = masters[i];
    if (!m.grad().defined()) m.mutable_grad() = torch::zeros_like(m);
    grads.push_back(m.grad());
  }
  pg_->all_reduce_sum(grads);
}

std::vector<double> DataParallel::sum(std::vector<double> values) const {
  return pg_ ? pg_->all_reduce_sum(std::move(values)) : values;
}

std::vector<double> DataParallel::gather(const std::vector<double>& values) const {
  return pg_ ? pg_->all_gather(values) : values;
}

void DataParallel::barrier() const {
  if (pg_) pg_->barrier();
}

}  // namespace r1kit::grpo
