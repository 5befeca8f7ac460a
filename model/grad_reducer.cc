#include "model/grad_reducer.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <mutex>
#include <utility>
#include <vector>

#include "core/check.h"

namespace r1kit {

// The hooks sit on each parameter's AccumulateGrad node (as c10d's Reducer does in LibTorch 1.13 and
// 2.x alike): they run once per backward call, after the gradient was added into .grad. LibTorch
// 2.1's per-tensor post-accumulate-grad hook slot is the same point but holds one hook only (Python's
// register_post_accumulate_grad_hook uses it), so the node hook is used on every version.
// std::shared_ptr<Node> in LibTorch 1.x, c10::intrusive_ptr<Node> in recent 2.x.
using NodePtr = decltype(torch::autograd::impl::grad_accumulator(std::declval<const torch::autograd::Variable&>()));

struct GradReducer::State {
  struct Bucket {
    std::vector<size_t> members;  // indices into the optimiser's parameters
    std::vector<int64_t> offsets;
    torch::Tensor flat;           // persistent buffer the all-reduce runs on
    std::unique_ptr<ProcessGroup::Pending> work;
    int64_t unfired = 0;          // members whose hook has not run in the armed backward
    bool started = false;
  };

  std::shared_ptr<ProcessGroup> pg;
  MasterWeights* optimizer = nullptr;
  std::mutex mu;
  std::vector<Bucket> buckets;
  std::vector<size_t> bucket_of;
  std::vector<char> fired, used;  // per parameter: hook ran while armed; had a gradient at its bucket's start
  size_t next_bucket = 0;         // buckets start strictly in order on every rank
  bool armed = false;
  int64_t started_in_backward = 0;
  std::vector<NodePtr> accumulators;  // kept alive: they hold the hooks
  std::vector<uintptr_t> hook_keys;

  int64_t bucket_bytes = 0;
  std::vector<size_t> fire_order;  // parameters in the order their hooks ran, in the first armed backward
  bool rebuilt = false;

  torch::Tensor grad(size_t i) const { return optimizer->masters()[i].grad(); }

  // Consecutive parameters of `order` of one dtype and device, about bucket_bytes per bucket.
  void build_buckets(const std::vector<size_t>& order) {
    const auto& masters = optimizer->masters();
    buckets.clear();
    bucket_of.assign(masters.size(), 0);
    int64_t bytes = 0;
    for (size_t j : order) {
      const torch::Tensor& m = masters[j];
      const int64_t b = m.numel() * static_cast<int64_t>(m.element_size());
      if (buckets.empty() || bytes + b > bucket_bytes || buckets.back().flat.scalar_type() != m.scalar_type() ||
          buckets.back().flat.device() != m.device()) {
        buckets.emplace_back();
        buckets.back().flat = torch::empty({0}, m.options().requires_grad(false));
        buckets.back().offsets.push_back(0);
        bytes = 0;
      }
      Bucket& bk = buckets.back();
      bk.members.push_back(j);
      bk.offsets.push_back(bk.offsets.back() + m.numel());
      bucket_of[j] = buckets.size() - 1;
      bytes += b;
    }
    for (Bucket& bk : buckets) {
      bk.flat = torch::empty({bk.offsets.back()}, bk.flat.options());
      bk.unfired = static_cast<int64_t>(bk.members.size());
    }
  }

  // After the first step, as DDP does: buckets follow the order in which rank 0's gradients became
  // final (parameters whose gradient was final before the armed backward go last), so a parameter
  // that is ready early never holds back the buckets behind it. Every rank takes rank 0's order.
  void rebuild_buckets() {
    const size_t n = fired.size();
    std::vector<double> order(n, 0.0);
    if (pg->rank() == 0) {
      std::vector<char> seen(n, 0);
      size_t k = 0;
      for (size_t i : fire_order) order[k++] = static_cast<double>(i), seen[i] = 1;
      for (size_t i = n; i-- > 0;)
        if (!seen[i]) order[k++] = static_cast<double>(i);
    }
    order = pg->all_reduce_sum(order);  // rank 0's values; the others add zeros
    std::vector<size_t> idx(n);
    for (size_t j = 0; j < n; ++j) idx[j] = static_cast<size_t>(order[j]);
    build_buckets(idx);
    rebuilt = true;
  }

  void start(size_t b) {
    Bucket& bk = buckets[b];
    torch::NoGradGuard no_grad;
    for (size_t k = 0; k < bk.members.size(); ++k) {
      const size_t i = bk.members[k];
      const torch::Tensor g = grad(i);
      torch::Tensor slot = bk.flat.slice(0, bk.offsets[k], bk.offsets[k + 1]);
      used[i] = g.defined();
      if (g.defined()) {
        slot.copy_(g.reshape({-1}));
      } else {
        slot.zero_();  // no gradient on this rank: its peers' sum still lines up
      }
    }
    bk.work = pg->start_all_reduce_sum(bk.flat);
    bk.started = true;
  }

  // Called by parameter i's hook after autograd accumulated its gradient.
  void on_grad_ready(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed) return;  // an accumulating micro-batch: no sync
    Bucket& bk = buckets[bucket_of[i]];
    R1_CHECK(!bk.started, "gradient all-reduce: parameter ", i, " received another gradient after its bucket's "
             "all-reduce started (more than one backward call after prepare_for_backward(): arm the reducer "
             "right before the step's last backward call)");
    optimizer->accumulate_grad(i);  // a bf16 gradient goes into its fp32 master first
    if (!fired[i]) {
      fired[i] = 1;
      --bk.unfired;
      if (!rebuilt) fire_order.push_back(i);
    }
    while (next_bucket < buckets.size() && buckets[next_bucket].unfired == 0) {
      start(next_bucket++);
      ++started_in_backward;
    }
  }
};

GradReducer::GradReducer(std::shared_ptr<ProcessGroup> pg, MasterWeights& optimizer, GradReducerOptions options)
    : state_(std::make_shared<State>()) {
  if (!pg) return;
  R1_CHECK(options.bucket_bytes > 0, "gradient all-reduce: bucket size must be positive, not ", options.bucket_bytes);
  State& s = *state_;
  s.pg = std::move(pg);
  s.optimizer = &optimizer;
  const auto& params = optimizer.params();
  const size_t n = params.size();
  s.bucket_bytes = options.bucket_bytes;
  s.fired.assign(n, 0);
  s.used.assign(n, 0);
  std::vector<size_t> reverse(n);
  for (size_t j = 0; j < n; ++j) reverse[j] = n - 1 - j;
  s.build_buckets(reverse);  // backward roughly produces the last layers' gradients first
  std::weak_ptr<State> weak = state_;
  for (size_t i = 0; i < n; ++i) {
    R1_CHECK(params[i].requires_grad() && params[i].is_leaf(), "gradient all-reduce: parameter ", i,
             " is not a trainable leaf tensor");
    NodePtr acc = torch::autograd::impl::grad_accumulator(params[i]);
    R1_CHECK(acc != nullptr, "gradient all-reduce: parameter ", i, " has no gradient accumulator");
    s.hook_keys.push_back(acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [weak, i](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
          if (auto st = weak.lock()) st->on_grad_ready(i);
          return outputs;
        })));
    s.accumulators.push_back(std::move(acc));
  }
}

GradReducer::~GradReducer() {
  State& s = *state_;
  for (size_t i = 0; i < s.accumulators.size(); ++i) s.accumulators[i]->del_post_hook(s.hook_keys[i]);
}

void GradReducer::prepare_for_backward() {
  State& s = *state_;
  if (!s.pg) return;
  std::lock_guard<std::mutex> lock(s.mu);
  R1_CHECK(!s.armed && s.next_bucket == 0, "gradient all-reduce: prepare_for_backward() twice without finish()");
  s.armed = true;
  s.started_in_backward = 0;
}

void GradReducer::finish() {
  State& s = *state_;
  if (!s.pg) return;
  std::lock_guard<std::mutex> lock(s.mu);
  s.armed = false;
  s.optimizer->accumulate_grads();  // gradients final before the armed backward (or never reached by it)
  while (s.next_bucket < s.buckets.size()) s.start(s.next_bucket++);
  // Which parameters had a gradient on any rank (after the buckets, in the same order everywhere).
  const std::vector<double> any = s.pg->all_reduce_sum(std::vector<double>(s.used.begin(), s.used.end()));
  torch::NoGradGuard no_grad;
  for (State::Bucket& bk : s.buckets) {
    bk.work->wait();
    bk.work.reset();
    for (size_t k = 0; k < bk.members.size(); ++k) {
      const size_t i = bk.members[k];
      torch::Tensor m = s.optimizer->masters()[i];
      torch::Tensor& g = m.mutable_grad();
      if (any[i] == 0) {
        g = torch::Tensor();  // no rank had one: AdamW skips it, as in one process
        continue;
      }
      torch::Tensor sum = bk.flat.slice(0, bk.offsets[k], bk.offsets[k + 1]).view(m.sizes());
      if (g.defined()) {
        g.copy_(sum);
      } else {
        g = sum.clone();
      }
    }
    bk.started = false;
    bk.unfired = static_cast<int64_t>(bk.members.size());
  }
  std::fill(s.fired.begin(), s.fired.end(), 0);
  s.next_bucket = 0;
  if (!s.rebuilt) s.rebuild_buckets();
}

int64_t GradReducer::num_buckets() const { return static_cast<int64_t>(state_->buckets.size()); }

int64_t GradReducer::buckets_started_in_backward() const { return state_->started_in_backward; }

}  // namespace r1kit
