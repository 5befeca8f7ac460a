#include "model/data_parallel.h"

#include <torch/torch.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "core/check.h"
#include "core/logging.h"

namespace r1kit {

DataParallel DataParallel::from_env(torch::Device device) {
  DistEnv env = read_dist_env();
  if (env.world_size <= 1) return DataParallel();
  // One process group per process: a recipe's data-parallel stages (sft, then grpo) share it, so the
  // ranks meet at the TCPStore once and the port is never re-bound.
  static std::mutex mu;
  static std::shared_ptr<ProcessGroup> group;
  static std::string joined;
  const std::string key = fmt::format("rank {} of {} at {}:{} on {}", env.rank, env.world_size, env.master_addr,
                                      env.master_port, device.is_cuda() ? "cuda" : "cpu");
  std::lock_guard<std::mutex> lock(mu);
  if (group) {
    R1_CHECK(key == joined, "data parallel: this process already joined as ", joined, "; cannot join again as ", key);
    return DataParallel(group);
  }
  std::chrono::milliseconds timeout = std::chrono::minutes(5);
  if (const char* t = std::getenv("R1_DIST_TIMEOUT_S")) timeout = std::chrono::milliseconds(std::atoll(t) * 1000);
  spdlog::info("data parallel: rank {} of {} ({}), rendezvous at {}:{}", env.rank, env.world_size, env.source,
               env.master_addr, env.master_port);
  group = ProcessGroup::create(env, device, timeout);
  joined = key;
  return DataParallel(group);
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

std::vector<double> DataParallel::sum(std::vector<double> values) const {
  return pg_ ? pg_->all_reduce_sum(std::move(values)) : values;
}

std::vector<double> DataParallel::gather(const std::vector<double>& values) const {
  return pg_ ? pg_->all_gather(values) : values;
}

void DataParallel::barrier() const {
  if (pg_) pg_->barrier();
}

}  // namespace r1kit
