#include "rollout/pool.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/check.h"
#include "model/checkpoint.h"
#include "model/lora.h"

namespace r1kit {

RolloutPool::RolloutPool(Transformer model, PoolOptions options, DecodeFn decode) : options_(std::move(options)) {
  R1_CHECK(options_.num_workers >= 1, "rollout pool: num_workers must be >= 1, got ", options_.num_workers);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = options_.threads_per_worker > 0 ? options_.threads_per_worker
                                                      : std::max(1, cores / options_.num_workers);
  weights_ = std::make_shared<const Weights>();
  NamedTensors source;
  {
    torch::NoGradGuard no_grad;
    source = hf_state_dict(model);
  }
  for (int i = 0; i < options_.num_workers; ++i) {
    const torch::Device device =
        options_.devices.empty() ? model->device() : options_.devices[i % options_.devices.size()];
    Transformer replica(model->config());
    replica->to(device, model->dtype());
    load_hf_state_dict(replica, source);
    if (options_.with_lora) copy_lora(model, replica);
    replica->eval();
    replica->set_compute_options(model->compute_options());  // autocast decodes like the policy
    auto w = std::make_unique<Worker>();
    w->engine = std::make_unique<GenerationEngine>(replica, options_.engine, decode);
    w->weights = weights_;
    w->index = i;
    w->threads = threads;
    workers_.push_back(std::move(w));
  }
  for (auto& w : workers_) w->thread = std::thread([this, wp = w.get()] { worker_loop(*wp); });
}

RolloutPool::~RolloutPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
}

void RolloutPool::worker_loop(Worker& w) {
  at::set_num_threads(w.threads);  // intra-op threads of this thread's ops
  while (true) {
    std::shared_ptr<const Weights> load;
    int64_t slot_len, max_rows;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || weights_ != w.weights || (!queue_.empty() && !error_); });
      if (stop_) return;
      if (weights_ != w.weights) load = weights_;
      slot_len = slot_len_;
      max_rows = max_rows_;
      w.busy = true;
    }
    try {
      if (load) {
        torch::NoGradGuard no_grad;
        r1kit::load_weights(w.engine->model(), load->tensors);  // model/lora.h (not the member)
        std::lock_guard<std::mutex> lock(mu_);
        w.weights = load;
      } else {
        w.engine->run([&](EngineRequest& r) { return next_request(w, r); },
                      [&](Group&& g) {
                        g.worker = w.index;
                        {
                          std::lock_guard<std::mutex> lock(mu_);
                          finished_.push_back(std::move(g));
                        }
                        done_cv_.notify_all();
                      },
                      slot_len, max_rows);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
      queue_.clear();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      w.busy = false;
    }
    done_cv_.notify_all();
  }
}

bool RolloutPool::next_request(Worker& w, EngineRequest& out) {
  std::lock_guard<std::mutex> lock(mu_);
  // New weights: take nothing more, so the groups in flight finish on the old version.
  if (error_ || stop_ || weights_ != w.weights || queue_.empty()) return false;
  out = std::move(queue_.front());
  queue_.pop_front();
  out.weight_version = w.weights->version;
  return true;
}

std::vector<Group> RolloutPool::generate(const std::vector<PromptRequest>& requests, const SamplingOptions& options,
                                         const std::function<void(const Group&)>& on_group) {
  options.validate();
  const GenerationEngine& engine = *workers_[0]->engine;
  int64_t slot_len = 1, total = 0, max_group = 1;
  for (size_t i = 0; i < requests.size(); ++i) {
    engine.check_request(requests[i], options, static_cast<int64_t>(i));
    slot_len = std::max(slot_len, GenerationEngine::tokens_needed(requests[i], options));
    total += requests[i].num_samples;
    max_group = std::max(max_group, requests[i].num_samples);
  }
  std::vector<Group> out(requests.size());
  if (requests.empty()) return out;
  auto shared = std::make_shared<const SamplingOptions>(options);
  {
    std::lock_guard<std::mutex> lock(mu_);
    R1_CHECK(!generating_, "rollout pool: generate() is already running (one call at a time)");
    generating_ = true;
    error_ = nullptr;
    finished_.clear();
    slot_len_ = slot_len;
    // Enough slots for each worker's share, and for sharing one prompt across its group.
    const int64_t share = (total + num_workers() - 1) / num_workers();
    max_rows_ = std::max<int64_t>(share, std::min<int64_t>(max_group, 2));
    for (size_t i = 0; i < requests.size(); ++i) {
      EngineRequest r;
      r.index = static_cast<int64_t>(i);
      r.prompt = requests[i];
      r.options = shared;
      r.seed = requests[i].seed >= 0 ? static_cast<uint64_t>(requests[i].seed) : derive_seed(options.seed, i);
      queue_.push_back(std::move(r));
    }
  }
  work_cv_.notify_all();

  size_t remaining = requests.size();
  std::exception_ptr failure;
  while (remaining > 0) {
    Group g;
    {
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [&] { return !finished_.empty() || error_; });
      if (finished_.empty()) break;  // a worker failed
      g = std::move(finished_.front());
      finished_.pop_front();
    }
    try {
      if (on_group) on_group(g);
    } catch (...) {
      failure = std::current_exception();
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = failure;
      queue_.clear();
      break;
    }
    const int64_t idx = g.index;
    out[idx] = std::move(g);
    --remaining;
  }
  // Leave the pool idle and clean for the next call, then report any failure.
  std::unique_lock<std::mutex> lock(mu_);
  if (remaining > 0) queue_.clear();
  done_cv_.wait(lock, [&] {
    return std::none_of(workers_.begin(), workers_.end(), [](const auto& w) { return w->busy; });
  });
  failure = error_;
  error_ = nullptr;
  queue_.clear();
  finished_.clear();
  generating_ = false;
  if (failure) std::rethrow_exception(failure);
  return out;
}

void RolloutPool::update_weights(int64_t version, const NamedTensors& hf_named_tensors) {
  auto w = std::make_shared<Weights>();
  w->version = version;
  {
    torch::NoGradGuard no_grad;
    w->tensors.reserve(hf_named_tensors.size());
    for (const auto& [name, t] : hf_named_tensors) w->tensors.emplace_back(name, t.detach().clone());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    R1_CHECK(version > weights_->version, "rollout pool: update_weights version ", version,
             " must be greater than the current version ", weights_->version);
    weights_ = std::move(w);
  }
  work_cv_.notify_all();
}

void RolloutPool::load_weights(int64_t version, const NamedTensors& hf_named_tensors) {
  std::unique_lock<std::mutex> lock(mu_);
  R1_CHECK(!generating_, "rollout pool: load_weights during generate()");
  R1_CHECK(version > weights_->version, "rollout pool: load_weights version ", version,
           " must be greater than the current version ", weights_->version);
  // Workers may still be loading an earlier update_weights snapshot: let them finish first.
  done_cv_.wait(lock, [&] {
    return std::none_of(workers_.begin(), workers_.end(), [&](const auto& w) { return w->busy || w->weights != weights_; });
  });
  {
    torch::NoGradGuard no_grad;
    for (auto& w : workers_) r1kit::load_weights(w->engine->model(), hf_named_tensors);  // model/lora.h: or adapter only
  }
  auto loaded = std::make_shared<Weights>();
  loaded->version = version;
  weights_ = loaded;  // the replicas hold it already: the workers have nothing to load
  for (auto& w : workers_) w->weights = loaded;
}

int64_t RolloutPool::weight_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return weights_->version;
}

EngineStats RolloutPool::stats() const {
  EngineStats s;
  for (const auto& w : workers_) {
    const EngineStats& e = w->engine->stats();
    s.prefill_forwards += e.prefill_forwards;
    s.prefill_tokens += e.prefill_tokens;
    s.prefix_copies += e.prefix_copies;
    s.decode_steps += e.decode_steps;
    s.decode_tokens += e.decode_tokens;
    s.generated_tokens += e.generated_tokens;
    s.prefill_s += e.prefill_s;
    s.decode_s += e.decode_s;
    s.sample_s += e.sample_s;
    s.run_s = std::max(s.run_s, e.run_s);
    for (const auto& [k, v] : e.prefills_per_request) s.prefills_per_request[k] += v;
  }
  return s;
}

void RolloutPool::reset_stats() {
  for (auto& w : workers_) w->engine->reset_stats();
}

}  // namespace r1kit
