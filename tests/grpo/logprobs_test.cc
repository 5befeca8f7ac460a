// Chunked completion log-probs against (a) the unchunked [B, T, V] computation on the tiny
// fixture models, at several temperatures and chunk sizes, with and without grad, and (b) the
// fixture's independent expected log-probs at temperature 1.
#include "grpo/logprobs.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "grpo/packed_batch.h"
#include "model/checkpoint.h"
#include "tests/test_util.h"

namespace r1kit::grpo {
namespace {

std::vector<int64_t> ids_of(const json& seq) { return seq.at("input_ids").get<std::vector<int64_t>>(); }

// Reference: full logits, full log_softmax, gather; the thing chunking must reproduce.
CompletionLogprobs unchunked(Transformer& model, const CompletionBatch& b, double temperature) {
  torch::Tensor logits = model->forward(b.input_ids, b.positions).to(torch::kFloat32) / temperature;  // [B,T,V]
  torch::Tensor logsm = torch::log_softmax(logits, -1);
  const int64_t B = b.input_ids.size(0), C = b.completion_ids.size(1);
  CompletionLogprobs out;
  out.logprobs = torch::zeros({B, C});
  out.entropy = torch::zeros({B, C});
  std::vector<torch::Tensor> rows_lp, rows_ent;
  for (int64_t i = 0; i < B; ++i) {
    for (int64_t j = 0; j < b.completion_lengths[i]; ++j) {
      int64_t pos = b.prompt_lengths[i] + j - 1;
      out.logprobs = out.logprobs.index_put({torch::tensor(i), torch::tensor(j)},
                                            logsm[i][pos][b.completion_ids[i][j].item<int64_t>()]);
      out.entropy[i][j] = -(logsm[i][pos].exp() * logsm[i][pos]).sum().detach();
    }
  }
  return out;
}

class LogprobsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LogprobsTest, ChunkedEqualsUnchunkedAndFixture) {
  const std::string dir = test::shared_path("fixtures/" + GetParam());
  R1_REQUIRE_FILE(dir + "/expected.json");
  Transformer model = load_model(dir, nullptr, torch::kCPU, torch::kFloat32);
  json expected = parse_json(read_file(dir + "/expected.json"), dir + "/expected.json");
  std::map<std::string, std::vector<int64_t>> seqs;
  std::map<std::string, std::vector<double>> want;
  for (const json& s : expected.at("sequences")) {
    seqs[s.at("name")] = ids_of(s);
    want[s.at("name")] = s.at("logprobs").get<std::vector<double>>();
  }
  // Rows of different prompt and completion lengths, right-padded in one batch:
  // len33 split 5 + 28, len7 split 1 + 6, len100 split 60 + 40, and len7 with an empty completion.
  auto split = [&](const std::string& name, size_t p) {
    const auto& v = seqs.at(name);
    return std::make_pair(std::vector<int64_t>(v.begin(), v.begin() + p), std::vector<int64_t>(v.begin() + p, v.end()));
  };
  std::vector<std::pair<std::string, size_t>> rows = {{"len33", 5}, {"len7", 1}, {"len100", 60}, {"len7", 7}};
  std::vector<std::vector<int64_t>> prompts, comps;
  for (auto& [name, p] : rows) {
    auto [a, b] = split(name, p);
    prompts.push_back(a);
    comps.push_back(b);
  }
  CompletionBatch batch = make_completion_batch(prompts, comps);
  ASSERT_EQ(batch.completion_ids.size(1), 40);

  // (b) temperature 1 against the independent reference, 2e-4 (the fixture's suggested logprobs_abs).
  {
    torch::NoGradGuard ng;
    LogprobOptions o;
    o.chunk_size = 7;
    CompletionLogprobs got = completion_logprobs(model, batch, o);
    double worst = 0;
    for (size_t r = 0; r < rows.size(); ++r) {
      const auto& w = want.at(rows[r].first);
      for (int64_t j = 0; j < batch.completion_lengths[r]; ++j) {
        double d = std::fabs(got.logprobs[r][j].item<double>() - w[rows[r].second - 1 + j]);
        worst = std::max(worst, d);
      }
    }
    std::printf("%s: max |logprob - fixture| = %.3e\n", GetParam().c_str(), worst);
    EXPECT_LT(worst, 2e-4);
    EXPECT_EQ(got.logprobs.masked_select(~batch.completion_mask).abs().sum().item<double>(), 0.0);
  }

  // (a) chunked == unchunked, values, entropy and parameter gradients.
  for (double temperature : {1.0, 0.7}) {
    model->zero_grad();
    CompletionLogprobs ref = unchunked(model, batch, temperature);
    (ref.logprobs * batch.completion_mask).sum().backward();
    std::vector<torch::Tensor> ref_grads;
    for (auto& p : model->parameters()) ref_grads.push_back(p.grad().clone());
    for (auto [chunk, keep] : {std::pair<int64_t, int64_t>{1, 1 << 30}, {13, 1 << 30}, {4096, 1 << 30}, {13, 0}}) {
      model->zero_grad();
      LogprobOptions o;
      o.temperature = temperature;
      o.chunk_size = chunk;
      o.entropy = true;
      o.keep_probs_bytes = keep;  // 0: backward recomputes the logits instead of reusing the probabilities
      CompletionLogprobs got = completion_logprobs(model, batch, o);
      EXPECT_LT((got.logprobs - ref.logprobs).abs().max().item<double>(), 1e-5) << "chunk " << chunk;
      EXPECT_LT((got.entropy - ref.entropy).abs().max().item<double>(), 1e-4) << "chunk " << chunk;
      got.logprobs.sum().backward();
      auto params = model->parameters();
      for (size_t k = 0; k < params.size(); ++k) {
        double scale = std::max(1.0, ref_grads[k].abs().max().item<double>());
        EXPECT_LT((params[k].grad() - ref_grads[k]).abs().max().item<double>(), 1e-4 * scale)
            << "chunk " << chunk << " param " << k;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(TinyModels, LogprobsTest, ::testing::Values("tiny-qwen2", "tiny-llama"));

// Groups of completions sharing a prompt, packed (prompt run once per group, rows sorted by
// length, groups chunked by max_rows), give the log-probs and gradients of the row-by-row batch.
class PackedLogprobsTest : public ::testing::TestWithParam<std::tuple<std::string, Kernels>> {};

TEST_P(PackedLogprobsTest, EqualRowwiseValuesAndGradients) {
  const std::string dir = test::shared_path("fixtures/" + std::get<0>(GetParam()));
  R1_REQUIRE_FILE(dir + "/config.json");
  Transformer model = load_model(dir, nullptr, torch::kCPU, torch::kFloat32);
  model->set_kernels(std::get<1>(GetParam()));
  torch::manual_seed(3);
  const int64_t V = model->config().vocab_size;
  auto rand_ids = [&](int64_t n) {
    auto t = torch::randint(V, {n}, torch::kLong);
    return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n);
  };
  std::vector<GroupRows> groups;
  std::vector<std::vector<int64_t>> prompts, comps;  // flat, row order
  for (int64_t plen : {5, 9, 2}) {
    GroupRows g;
    g.prompt = rand_ids(plen);
    for (int64_t clen : {4, 0, 7}) {
      g.completions.push_back(rand_ids(clen + plen % 3));
      g.rows.push_back(static_cast<int64_t>(comps.size()));
      prompts.push_back(g.prompt);
      comps.push_back(g.completions.back());
    }
    groups.push_back(g);
  }
  CompletionBatch flat = make_completion_batch(prompts, comps);
  LogprobOptions o;
  o.temperature = 0.8;
  o.entropy = true;
  model->zero_grad();
  CompletionLogprobs ref = completion_logprobs(model, flat, o);
  (ref.logprobs * ref.logprobs.detach().abs()).sum().backward();
  std::vector<torch::Tensor> ref_grads;
  for (auto& p : model->parameters()) ref_grads.push_back(p.grad().clone());

  for (int64_t max_rows : {32, 4, 2}) {
    PackOptions pack;
    pack.max_rows = max_rows;
    std::vector<PackedBatch> micro = pack_groups(groups, pack);
    model->zero_grad();
    double worst = 0, worst_ent = 0;
    std::vector<int> seen(comps.size(), 0);
    for (const PackedBatch& mb : micro) {
      EXPECT_LE(mb.num_rows(), max_rows);
      CompletionLogprobs got = completion_logprobs(model, mb, o);
      (got.logprobs * got.logprobs.detach().abs()).sum().backward();
      for (int64_t r = 0; r < mb.num_rows(); ++r) {
        const int64_t row = mb.rows[r];
        ++seen[row];
        const int64_t n = mb.completion_lengths[r];
        ASSERT_EQ(n, flat.completion_lengths[row]);
        if (n == 0) continue;
        worst = std::max(worst, (got.logprobs[r].narrow(0, 0, n) - ref.logprobs[row].narrow(0, 0, n)).abs().max().item<double>());
        worst_ent = std::max(worst_ent, (got.entropy[r].narrow(0, 0, n) - ref.entropy[row].narrow(0, 0, n)).abs().max().item<double>());
        EXPECT_EQ(got.logprobs[r].narrow(0, n, got.logprobs.size(1) - n).abs().sum().item<double>(), 0.0);
      }
    }
    for (size_t r = 0; r < seen.size(); ++r) EXPECT_EQ(seen[r], 1) << "row " << r << " max_rows " << max_rows;
    double worst_grad = 0;
    auto params = model->parameters();
    for (size_t k = 0; k < params.size(); ++k)
      worst_grad = std::max(worst_grad, (params[k].grad() - ref_grads[k]).abs().max().item<double>() /
                                            std::max(1.0, ref_grads[k].abs().max().item<double>()));
    std::printf("%s packed (max_rows %lld, %zu micro-batches) vs row-wise: logprobs %.3g  entropy %.3g  grads %.3g\n",
                std::get<0>(GetParam()).c_str(), static_cast<long long>(max_rows), micro.size(), worst, worst_ent,
                worst_grad);
    EXPECT_LT(worst, 2e-5);
    EXPECT_LT(worst_ent, 1e-4);
    EXPECT_LT(worst_grad, 1e-4);
  }
}

INSTANTIATE_TEST_SUITE_P(TinyModels, PackedLogprobsTest,
                         ::testing::Combine(::testing::Values("tiny-qwen2", "tiny-llama"),
                                            ::testing::Values(Kernels::kAten, Kernels::kOneDnn, Kernels::kSgemm)));

TEST(PackGroups, SortsByLengthChunksGroupsAndRespectsBudgets) {
  std::vector<GroupRows> groups;
  int64_t row = 0;
  for (int64_t g = 0; g < 5; ++g) {
    GroupRows gr;
    gr.prompt = std::vector<int64_t>(3 + g, 1);
    for (int64_t s = 0; s < 4; ++s) {
      gr.completions.push_back(std::vector<int64_t>(1 + (g * 7 + s * 3) % 10, 2));
      gr.rows.push_back(row++);
    }
    groups.push_back(gr);
  }
  PackOptions o;
  o.max_rows = 8;
  o.max_tokens = 60;
  auto micro = pack_groups(groups, o);
  std::vector<int> seen(row, 0);
  int64_t last_len = 1 << 30;
  for (const auto& mb : micro) {
    EXPECT_LE(mb.num_rows(), 8);
    const int64_t P = mb.prompt_ids.size(0), Tp = mb.prompt_ids.size(1), Tc = mb.completion_ids.size(1);
    EXPECT_TRUE(P == 1 || P * Tp + mb.num_rows() * Tc <= 60) << "token budget (one group may exceed it alone)";
    EXPECT_EQ(mb.num_rows(), P * mb.group_size);
    EXPECT_LE(Tp + Tc, last_len) << "longest micro-batches first";
    last_len = Tp + Tc;
    for (int64_t r : mb.rows) ++seen[r];
  }
  for (int s : seen) EXPECT_EQ(s, 1);
  o.max_rows = 3;  // groups of 4 -> chunks of 3 and 1, packed separately
  o.max_tokens = 0;
  micro = pack_groups(groups, o);
  std::fill(seen.begin(), seen.end(), 0);
  for (const auto& mb : micro) {
    EXPECT_TRUE(mb.group_size == 3 || mb.group_size == 1);
    for (int64_t r : mb.rows) ++seen[r];
  }
  for (int s : seen) EXPECT_EQ(s, 1);
  EXPECT_THROW(pack_groups({GroupRows{{}, {{1}}, {0}}}, {}), Error);
}

TEST(Logprobs, EmptyBatchAndBadInput) {
  EXPECT_THROW(make_completion_batch({{}}, {{1}}), Error);
  EXPECT_THROW(make_completion_batch({{1}}, {}), Error);
}

}  // namespace
}  // namespace r1kit::grpo
