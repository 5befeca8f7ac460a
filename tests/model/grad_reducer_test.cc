// Gradient all-reduce overlapped with backward (model/grad_reducer.h), 2 Gloo ranks on loopback as
// two threads of this process:
//   - on a tiny decoder with 3 accumulated micro-batches per step (fp32, bf16 with fp32 masters,
//     LoRA), every bucket size (1 byte = one parameter per bucket, ..., 25 MB = one bucket) gives
//     the same gradients as one flat all-reduce of the accumulated gradients after backward, bit
//     for bit, over 2 steps (the second with the buckets rebuilt in gradient-ready order), and the
//     buckets start inside the last backward (the overlap), not after it;
//   - a parameter with a gradient on one rank only gets the sum on both; one with none stays
//     without a gradient (AdamW skips it, as in one process);
//   - a gradient that changes after its bucket started is an Error.
#include "model/grad_reducer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <thread>

#include "core/launcher.h"
#include "model/lora.h"
#include "model/master_weights.h"
#include "model/transformer.h"
#include "tests/model/model_test_util.h"

namespace r1kit {
namespace {

// Runs body(rank, group) on 2 ranks (threads) joined through a TCPStore on a free port.
void on_two_ranks(const std::function<void(int, const std::shared_ptr<ProcessGroup>&)>& body) {
  const int port = free_tcp_port();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(2);
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      try {
        DistEnv env;
        env.rank = r;
        env.world_size = 2;
        env.master_port = port;
        body(r, ProcessGroup::create(env, torch::kCPU, std::chrono::seconds(60)));
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 2; ++r) ASSERT_EQ(errors[r], "") << "rank " << r;
}

struct Setup {
  torch::Dtype dtype = torch::kFloat32;
  bool lora = false;
};

constexpr int kSteps = 2, kMicro = 3;

// Per rank: a replica of one tiny decoder and its own micro-batches.
struct Replica {
  Transformer model{nullptr};
  std::vector<torch::Tensor> params;  // the trainable ones
  std::vector<torch::Tensor> ids;     // [step * kMicro + k]
};

Replica make_replica(const Setup& s, int rank) {
  Replica rep;
  torch::manual_seed(7);  // the same weights on both ranks
  rep.model = Transformer(test::tiny_config());
  rep.model->to(s.dtype);
  if (s.lora) {
    LoraOptions lo;
    lo.r = 4;
    LoraAdapter a = attach_lora(rep.model, lo, 3);
    rep.params = a.parameters();
    torch::NoGradGuard no_grad;  // B starts at zero: give it values so every adapter tensor gets a gradient
    for (auto& p : rep.params) p.normal_(0.0, 0.05);
  } else {
    rep.params = rep.model->parameters();
  }
  for (const auto& p : rep.params) EXPECT_EQ(p.scalar_type(), s.dtype);
  torch::manual_seed(100 + rank);  // different data per rank
  for (int i = 0; i < kSteps * kMicro; ++i) rep.ids.push_back(torch::randint(0, 97, {2, 9}, torch::kInt64));
  return rep;
}

torch::Tensor micro_loss(Replica& rep, int step, int k) {
  const torch::Tensor ids = rep.ids[static_cast<size_t>(step * kMicro + k)];
  const torch::Tensor pos = torch::arange(ids.size(1)).unsqueeze(0).expand_as(ids).contiguous();
  return rep.model->forward(ids, pos).to(torch::kFloat32).logsumexp(-1).mean();
}

std::vector<torch::Tensor> grads_of(const MasterWeights& opt) {
  std::vector<torch::Tensor> g;
  for (const auto& m : opt.masters()) g.push_back(m.grad().defined() ? m.grad().clone() : torch::Tensor());
  return g;
}

struct RankResult {
  std::vector<std::vector<torch::Tensor>> flat;             // [step] reference grads
  std::vector<std::vector<std::vector<torch::Tensor>>> bk;  // [bucket size][step]
  std::vector<int64_t> num_buckets, started_in_backward;    // [bucket size] (second step)
};

const std::vector<int64_t> kBucketBytes = {1, 512, 4096, 64 << 10, 25 << 20};

void check_setup(const Setup& s, const char* what) {
  std::vector<RankResult> res(2);
  std::vector<Replica> reps = {make_replica(s, 0), make_replica(s, 1)};
  torch::set_num_threads(1);
  on_two_ranks([&](int rank, const std::shared_ptr<ProcessGroup>& pg) {
    Replica& rep = reps[static_cast<size_t>(rank)];
    RankResult& out = res[static_cast<size_t>(rank)];
    // Reference: accumulate every micro-batch, then one flat all-reduce of all gradients.
    MasterWeights ref(rep.params, torch::optim::AdamWOptions(1e-3));
    if (ref.enabled() != (s.dtype != torch::kFloat32)) throw std::runtime_error("fp32 masters expected for bf16 only");
    for (int step = 0; step < kSteps; ++step) {
      ref.zero_grad();
      for (int k = 0; k < kMicro; ++k) {
        micro_loss(rep, step, k).backward();
        ref.accumulate_grads();
      }
      std::vector<torch::Tensor> g;
      for (const auto& m : ref.masters()) g.push_back(m.grad());
      pg->all_reduce_sum(g, int64_t{1} << 40);
      out.flat.push_back(grads_of(ref));
    }
    ref.zero_grad();
    // Bucketed, overlapped with the last micro-batch's backward.
    for (int64_t bytes : kBucketBytes) {
      MasterWeights opt(rep.params, torch::optim::AdamWOptions(1e-3));
      GradReducerOptions ro;
      ro.bucket_bytes = bytes;
      GradReducer reducer(pg, opt, ro);
      out.bk.emplace_back();
      for (int step = 0; step < kSteps; ++step) {
        opt.zero_grad();
        for (int k = 0; k < kMicro; ++k) {
          if (k + 1 == kMicro) reducer.prepare_for_backward();
          micro_loss(rep, step, k).backward();
          opt.accumulate_grads();
        }
        reducer.finish();
        out.bk.back().push_back(grads_of(opt));
      }
      opt.zero_grad();
      out.num_buckets.push_back(reducer.num_buckets());
      out.started_in_backward.push_back(reducer.buckets_started_in_backward());
    }
  });
  for (int rank = 0; rank < 2; ++rank) {
    const RankResult& r = res[static_cast<size_t>(rank)];
    ASSERT_EQ(r.bk.size(), kBucketBytes.size());
    for (size_t b = 0; b < kBucketBytes.size(); ++b) {
      double diff = 0, vs_rank0 = 0, local_norm = 0;
      for (int step = 0; step < kSteps; ++step) {
        const auto& want = r.flat[static_cast<size_t>(step)];
        const auto& got = r.bk[b][static_cast<size_t>(step)];
        ASSERT_EQ(want.size(), got.size());
        for (size_t i = 0; i < want.size(); ++i) {
          ASSERT_TRUE(want[i].defined() && got[i].defined()) << what << " parameter " << i;
          diff = std::max(diff, test::max_abs_diff(want[i], got[i]));
          vs_rank0 = std::max(vs_rank0, test::max_abs_diff(got[i], res[0].bk[b][static_cast<size_t>(step)][i]));
          local_norm += want[i].to(torch::kFloat64).pow(2).sum().item<double>();
        }
      }
      std::printf("%s rank %d, buckets of %lld bytes: %lld buckets, %lld started inside backward; max |bucketed - "
                  "flat| %.3e, |rank - rank 0| %.3e (grad norm^2 %.6e)\n",
                  what, rank, static_cast<long long>(kBucketBytes[b]), static_cast<long long>(r.num_buckets[b]),
                  static_cast<long long>(r.started_in_backward[b]), diff, vs_rank0, local_norm);
      EXPECT_EQ(diff, 0.0) << what << " bucket bytes " << kBucketBytes[b];
      EXPECT_EQ(vs_rank0, 0.0);
      EXPECT_GT(local_norm, 0.0);
      // Every parameter's gradient is final inside the last backward: every bucket starts there.
      EXPECT_EQ(r.started_in_backward[b], r.num_buckets[b]) << what;
    }
    EXPECT_EQ(r.num_buckets.front(), static_cast<int64_t>(r.flat[0].size()));  // 1 byte: a bucket per parameter
    EXPECT_EQ(r.num_buckets.back(), 1);                                        // 25 MB: one bucket
  }
}

TEST(GradReducer, BucketsEqualOneFlatAllReduceFloat32) { check_setup({torch::kFloat32, false}, "fp32"); }

TEST(GradReducer, BucketsEqualOneFlatAllReduceBf16Masters) { check_setup({torch::kBFloat16, false}, "bf16+masters"); }

TEST(GradReducer, BucketsEqualOneFlatAllReduceLora) { check_setup({torch::kFloat32, true}, "lora"); }

TEST(GradReducer, GradientOnOneRankOnlyAndNone) {
  std::vector<std::vector<torch::Tensor>> got(2);
  on_two_ranks([&](int rank, const std::shared_ptr<ProcessGroup>& pg) {
    torch::Tensor used = torch::full({3}, 1.0).requires_grad_(true);
    torch::Tensor one_rank = torch::full({2}, 1.0).requires_grad_(true);
    torch::Tensor unused = torch::full({4}, 1.0).requires_grad_(true);
    MasterWeights opt({used, one_rank, unused}, torch::optim::AdamWOptions(1e-3));
    GradReducerOptions ro;
    ro.bucket_bytes = 8;
    GradReducer reducer(pg, opt, ro);
    for (int step = 0; step < 2; ++step) {
      opt.zero_grad();
      reducer.prepare_for_backward();
      torch::Tensor loss = (used * (rank + 1.0)).sum();
      if (rank == 1) loss = loss + (one_rank * 5.0).sum();
      loss.backward();
      reducer.finish();
    }
    got[static_cast<size_t>(rank)] = {used.grad(), one_rank.grad(), unused.grad()};
  });
  for (int r = 0; r < 2; ++r) {
    const auto& g = got[static_cast<size_t>(r)];
    ASSERT_TRUE(g[0].defined() && g[1].defined());
    EXPECT_TRUE(torch::equal(g[0], torch::full({3}, 3.0))) << "rank " << r;  // 1 + 2
    EXPECT_TRUE(torch::equal(g[1], torch::full({2}, 5.0))) << "rank " << r;  // rank 1's only
    EXPECT_FALSE(g[2].defined()) << "rank " << r;                            // no rank had one
  }
}

TEST(GradReducer, GradientAfterItsBucketStartedIsAnError) {
  // Armed too early (two backward calls after prepare_for_backward): the second gradient of `b`
  // would miss its bucket, which already started. A clear error, not a silently stale sum.
  std::vector<std::string> errors(2);
  on_two_ranks([&](int rank, const std::shared_ptr<ProcessGroup>& pg) {
    torch::Tensor a = torch::full({3}, 1.0).requires_grad_(true);
    torch::Tensor b = torch::full({2}, 1.0).requires_grad_(true);
    MasterWeights opt({a, b}, torch::optim::AdamWOptions(1e-3));
    GradReducerOptions ro;
    ro.bucket_bytes = 1;
    GradReducer reducer(pg, opt, ro);
    reducer.prepare_for_backward();
    ((a * 2.0).sum() + (b * 3.0).sum()).backward();  // both buckets start
    try {
      (b * 4.0).sum().backward();
    } catch (const std::exception& e) {
      errors[static_cast<size_t>(rank)] = e.what();
    }
    reducer.finish();
  });
  for (const auto& e : errors) {
    std::printf("error: %s\n", e.c_str());
    EXPECT_NE(e.find("received another gradient after its bucket's all-reduce started"), std::string::npos) << e;
  }
}

}  // namespace
}  // namespace r1kit
