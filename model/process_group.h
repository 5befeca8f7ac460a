// Data-parallel communication on c10d (PyTorch's distributed engine, shipped in LibTorch):
// a TCPStore rendezvous and a ProcessGroupGloo (CPU tensors; CUDA tensors are staged through host
// memory) or, in a CUDA build whose LibTorch has it, a ProcessGroupNCCL for CUDA tensors.
//
//   DistEnv env = read_dist_env();          // torchrun's RANK/WORLD_SIZE/... or Slurm's SLURM_PROCID/...
//   if (env.world_size > 1) pg = ProcessGroup::create(env, device);
//   pg->all_reduce_sum(grads);              // in place, flattened into buckets, all buckets in flight at once
//   auto w = pg->start_all_reduce_sum(flat); ...; w->wait();   // one async sum (model/grad_reducer.h)
//
// Rank 0 hosts the TCPStore on MASTER_ADDR:MASTER_PORT; every collective fails with an Error after
// `timeout` (a dead peer does not hang the others forever).
#pragma once
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace r1kit {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "none";  // "torchrun" (RANK/WORLD_SIZE set), "slurm" (SLURM_PROCID/SLURM_NTASKS), "none"
};

// Reads the launcher's environment: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT (torchrun,
// `r1kit launch`) take precedence; else SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, with MASTER_ADDR
// defaulting to SLURM_LAUNCH_NODE_IPADDR (the node running the batch script). A malformed or
// inconsistent value is an Error naming the variable. `getenv` is injectable for tests.
DistEnv read_dist_env(const std::function<const char*(const char*)>& getenv = nullptr);

class ProcessGroup {
 public:
  // Rendezvous of env.world_size processes; blocks until all have joined (or `timeout`).
  static std::shared_ptr<ProcessGroup> create(const DistEnv& env, torch::Device device,
                                              std::chrono::milliseconds timeout = std::chrono::minutes(5));
  virtual ~ProcessGroup() = default;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  const char* backend() const { return backend_; }

  // An all-reduce in flight (c10d's async work handle). wait() completes it: the sum is in the tensor
  // given to start_all_reduce_sum, or an Error names the backend after the timeout. Call it once.
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual void wait() = 0;
  };
  // Starts summing the contiguous tensor `flat` over all ranks in place and returns at once. Every
  // rank must start its collectives in the same order; `flat` stays untouched by the caller until wait().
  virtual std::unique_ptr<Pending> start_all_reduce_sum(torch::Tensor flat) = 0;
  // Sums the tensors element-wise over all ranks, in place. Same-dtype tensors are flattened into
  // buckets of about bucket_bytes; every bucket's all-reduce is started before the first is awaited.
  void all_reduce_sum(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes = 25 << 20);
  // Sums doubles over ranks (counts, metric sums) exactly as float64.
  std::vector<double> all_reduce_sum(std::vector<double> values);
  // Every rank's `values` concatenated in rank order (sizes may differ per rank).
  std::vector<double> all_gather(const std::vector<double>& values);
  // Overwrites the tensors with rank `root`'s.
  virtual void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0) = 0;
  virtual void barrier() = 0;

 protected:
  int rank_ = 0, world_size_ = 1;
  const char* backend_ = "";
};

}  // namespace r1kit
