// RolloutPool: N workers, each with its own policy replica and GenerationEngine, fed from one
// queue of prompt groups. Finished groups stream back to the caller as they complete, so reward
// computation starts before the slowest group ends.
//
// Weights: update_weights(version, tensors) snapshots the trainer's tensors; every group admitted
// after it returns is generated with them and records that version. A worker busy with older
// groups stops taking new ones, finishes those (so a group never mixes versions), loads the new
// weights, and goes on.
//
// Determinism: a group's samples depend only on the weights, the options and the request's seed
// (derive_seed(options.seed, index) unless the request sets one), not on which worker ran it or
// what else shared its batch.
#pragma once
#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "rollout/engine.h"

namespace r1kit {

struct PoolOptions {
  int num_workers = 1;                // policy replicas / worker threads (one per GPU)
  int threads_per_worker = 0;         // intra-op threads per worker; 0: cores / num_workers (at least 1)
  std::vector<torch::Device> devices; // worker i runs on devices[i % size]; empty: the model's device
  EngineOptions engine;               // per-worker engine (slots, token budget)
  bool with_lora = false;             // replicas carry the model's LoRA adapter (model/lora.h), unmerged
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

class RolloutPool {
 public:
  // Builds num_workers replicas with `model`'s config, dtype and current weights (copies: the
  // caller may keep training `model`). `decode` turns ids into text (stop strings, Sample::text).
  RolloutPool(Transformer model, PoolOptions options = {}, DecodeFn decode = nullptr);
  ~RolloutPool();
  RolloutPool(const RolloutPool&) = delete;
  RolloutPool& operator=(const RolloutPool&) = delete;

  // B prompts x G samples -> B groups, returned in request order. on_group runs on the calling
  // thread for each group as soon as it is finished (finish order). One generate() at a time;
  // update_weights may be called from another thread (or from on_group) meanwhile.
  std::vector<Group> generate(const std::vector<PromptRequest>& requests, const SamplingOptions& options,
                              const std::function<void(const Group&)>& on_group = nullptr);

  // HF-named tensors (model/checkpoint.h hf_state_dict) of the policy at `version` (> the current
  // version), or only its LoRA adapter's tensors (model/lora.h load_weights) when the replicas
  // carry it. Copied before returning; groups admitted afterwards use them.
  void update_weights(int64_t version, const NamedTensors& hf_named_tensors);
  // The same for a caller that changes nothing while the pool works (the synchronous trainer):
  // copies `hf_named_tensors` (or only the adapter's tensors, as above) straight into every
  // replica (one copy, no snapshot) and returns when they hold them. Call between generate()
  // calls, not during one.
  void load_weights(int64_t version, const NamedTensors& hf_named_tensors);
  int64_t weight_version() const;

  int num_workers() const { return static_cast<int>(workers_.size()); }
  // Sum of the workers' engine counters (call between generate() calls).
  EngineStats stats() const;
  void reset_stats();

 private:
  struct Weights {
    int64_t version = 0;
    NamedTensors tensors;  // empty for the initial weights (already in the replicas)
  };
  struct Worker {
    std::unique_ptr<GenerationEngine> engine;
    std::shared_ptr<const Weights> weights;  // what the replica holds
    std::thread thread;
    int index = 0;
    int threads = 1;
    bool busy = false;
  };

  void worker_loop(Worker& w);
  bool next_request(Worker& w, EngineRequest& out);  // called by the worker's engine, under no lock

  PoolOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // workers wait for requests, new weights or stop
  std::condition_variable done_cv_;  // generate() waits for groups, errors, idle workers
  std::deque<EngineRequest> queue_;
  std::deque<Group> finished_;
  std::exception_ptr error_;
  std::shared_ptr<const Weights> weights_;
  int64_t slot_len_ = 1, max_rows_ = 0;  // of the current generate() call
  bool generating_ = false;
  bool stop_ = false;
};

}  // namespace r1kit
