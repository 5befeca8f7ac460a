// Sequence packing for SFT (sft/sft_packing.h): the best-fit-decreasing packer (every example once,
// no row over the capacity, deterministic, a hand-checked placement, errors naming the example),
// packed batches (positions restart, targets never cross an example), and training: a packed step
// gives the unpacked step's loss and gradients (chat records with the assistant-only mask; full
// model and LoRA), whole packed runs match unpacked ones sequentially and on threads, lower the
// loss, and resume after an interruption exactly like a clean run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <numeric>
#include <random>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"
#include "recipes/tiny_task.h"
#include "sft/sft_data_file.h"
#include "sft/sft_packing.h"
#include "sft/sft_trainer.h"
#include "tests/model/model_test_util.h"
#include "tests/sft/tiny_sft.h"

namespace r1kit::sft {
namespace {

using namespace tiny;  // NOLINT: fresh_dir, small_model (tests/sft/tiny_sft.h)

using test::error_of;  // tests/model/model_test_util.h

// Chat records of 1-3 user/assistant turns (tiny-task problems and their worked answers), so the
// lengths vary about threefold and every example has several learned and unlearned spans.
std::vector<json> chat_records(int n, uint64_t seed) {
  static const recipes::TinyTask task;
  std::mt19937_64 rng(seed);
  std::vector<json> out;
  for (int i = 0; i < n; ++i) {
    json messages = json::array();
    const int turns = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < turns; ++k) {
      const recipes::TinyProblem p = task.sample(rng);
      std::string completion = p.completion(0.0, rng);
      completion = completion.substr(0, completion.find("<eos>"));
      messages.push_back({{"role", "user"}, {"content", p.prompt()}});
      messages.push_back({{"role", "assistant"}, {"content", completion}});
    }
    out.push_back({{"messages", messages}});
  }
  return out;
}

struct ChatData {
  std::string model_dir;
  Tokenizer tok;
  int64_t eos = 0;
  std::vector<SftExample> examples;
};

ChatData chat_data(const std::string& name, int n, uint64_t seed = 1) {
  ChatData d{small_model(name), Tokenizer(), 0, {}};
  d.tok = Tokenizer::from_file(d.model_dir);
  d.eos = d.tok.token_to_id("<eos>");
  SftFormatOptions f;
  f.format = "chat";
  f.tokenizer_dir = d.model_dir;  // the tokenizer's own chat template
  const SftEncoder enc(d.tok, f, d.eos);
  const std::vector<json> recs = chat_records(n, seed);
  for (size_t i = 0; i < recs.size(); ++i) d.examples.push_back(enc.encode(recs[i], "chat:" + std::to_string(i + 1)));
  return d;
}

std::vector<SftExample> with_lengths(const std::vector<int64_t>& lengths) {
  std::vector<SftExample> out;
  for (size_t i = 0; i < lengths.size(); ++i) {
    SftExample e;
    e.ids.assign(lengths[i], 7);
    e.loss_mask.assign(lengths[i], 1);
    e.where = "train.jsonl:" + std::to_string(i + 1);
    out.push_back(e);
  }
  return out;
}

TEST(SftPacking, BestFitDecreasingHandChecked) {
  // Longest first: 7 opens row 0 (room 1), 5 row 1 (room 3), 4 row 2 (room 4); 3 takes row 1's exact
  // room 3, 2 goes to row 2 (room 4; row 0's 1 is too small), 1 fills row 0 (room 1 is the least that
  // fits, not row 2's 2).
  const std::vector<PackedRow> rows = pack_best_fit_decreasing({5, 3, 7, 2, 4, 1}, 8);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].examples, (std::vector<size_t>{2, 5}));
  EXPECT_EQ(rows[1].examples, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(rows[2].examples, (std::vector<size_t>{4, 3}));
  EXPECT_EQ(rows[0].length, 8);
  EXPECT_EQ(rows[1].length, 8);
  EXPECT_EQ(rows[2].length, 6);
  // Best fit, not first fit: 8 opens row 0 (room 3), 5 row 1 (room 6), 4 joins row 1 (room 2); 1 goes
  // to row 1, the least room that fits (first fit would put it in row 0).
  const std::vector<PackedRow> best = pack_best_fit_decreasing({5, 8, 4, 1}, 11);
  ASSERT_EQ(best.size(), 2u);
  EXPECT_EQ(best[0].examples, (std::vector<size_t>{1}));
  EXPECT_EQ(best[1].examples, (std::vector<size_t>{0, 2, 3}));
  // Equal lengths keep their input order; equal rooms go to the row opened first.
  const std::vector<PackedRow> ties = pack_best_fit_decreasing({2, 2, 3, 3, 1}, 4);
  ASSERT_EQ(ties.size(), 3u);
  EXPECT_EQ(ties[0].examples, (std::vector<size_t>{2, 4}));
  EXPECT_EQ(ties[1].examples, (std::vector<size_t>{3}));
  EXPECT_EQ(ties[2].examples, (std::vector<size_t>{0, 1}));
}

TEST(SftPacking, EveryExampleOnceWithinCapacityAndDeterministic) {
  std::mt19937_64 rng(3);
  int64_t checked = 0, rows_total = 0, lower_bound_total = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t capacity = 16 + static_cast<int64_t>(rng() % 200);
    std::vector<int64_t> lengths(1 + rng() % 60);
    int64_t total = 0;
    for (auto& n : lengths) total += (n = 1 + static_cast<int64_t>(rng() % capacity));
    const std::vector<PackedRow> rows = pack_best_fit_decreasing(lengths, capacity);
    std::vector<int> seen(lengths.size(), 0);
    for (const auto& row : rows) {
      int64_t n = 0;
      for (size_t i : row.examples) {
        ASSERT_LT(i, lengths.size());
        ++seen[i];
        n += lengths[i];
      }
      EXPECT_EQ(n, row.length);
      EXPECT_LE(row.length, capacity);
      EXPECT_FALSE(row.examples.empty());
    }
    for (int s : seen) EXPECT_EQ(s, 1);
    const std::vector<PackedRow> again = pack_best_fit_decreasing(lengths, capacity);
    ASSERT_EQ(again.size(), rows.size());
    for (size_t r = 0; r < rows.size(); ++r) EXPECT_EQ(again[r].examples, rows[r].examples);
    // Best fit never leaves two rows that could have been one: any two rows together overflow.
    for (size_t a = 0; a < rows.size(); ++a)
      for (size_t b = a + 1; b < rows.size(); ++b) EXPECT_GT(rows[a].length + rows[b].length, capacity);
    rows_total += static_cast<int64_t>(rows.size());
    lower_bound_total += (total + capacity - 1) / capacity;
    ++checked;
  }
  std::printf("200 random packings: %lld rows for a lower bound of %lld\n", (long long)rows_total,
              (long long)lower_bound_total);
  EXPECT_EQ(checked, 200);
}

TEST(SftPacking, BadInputNamesTheExample) {
  const auto examples = with_lengths({5, 12, 3});
  EXPECT_NE(error_of([&] { pack_sft_examples(examples, 10); })
                .find("example 'train.jsonl:2' has 12 tokens, more than packing_length 10"),
            std::string::npos)
      << error_of([&] { pack_sft_examples(examples, 10); });
  EXPECT_EQ(pack_sft_examples(examples, 0).size(), 2u);  // 0: rows of the longest example (12): {12}, {5, 3}
  auto empty = with_lengths({4, 0});
  empty[1].where.clear();
  EXPECT_NE(error_of([&] { pack_sft_examples(empty, 8); }).find("example 1 is empty"), std::string::npos);
  EXPECT_NE(error_of([&] { pack_sft_examples(examples, -1); }).find("packing_length must be >= 0"), std::string::npos);
  EXPECT_NE(error_of([&] { pack_best_fit_decreasing({3, 9}, 8); }).find("item 1 has length 9"), std::string::npos);
  EXPECT_NE(error_of([&] { pack_best_fit_decreasing({3}, 0); }).find("capacity must be >= 1"), std::string::npos);
  PackedRow wrong;
  wrong.examples = {0, 2};
  wrong.length = 9;  // the examples hold 8
  EXPECT_NE(error_of([&] { collate_packed(examples, {wrong}, 0); }).find("a row says 9 tokens"), std::string::npos);
}

// Chat examples packed: each example's slice of the packed batch has exactly its unpacked ids and
// targets, positions restart at 0, and the last token of an example predicts nothing.
TEST(SftPacking, PackedBatchKeepsEveryExampleAndNoTargetCrossesABoundary) {
  const ChatData d = chat_data("pack_collate", 10);
  int64_t longest = 0, learned = 0, context = 0;
  for (const auto& e : d.examples) {
    longest = std::max<int64_t>(longest, e.ids.size());
    for (uint8_t m : e.loss_mask) (m ? learned : context) += 1;
  }
  ASSERT_GT(learned, 0);
  ASSERT_GT(context, 0);  // assistant-only: user turns are not learned
  const std::vector<PackedRow> rows = pack_sft_examples(d.examples, 2 * longest);
  ASSERT_LT(rows.size(), d.examples.size());  // several examples per row
  const SftBatch packed = collate_packed(d.examples, rows, d.eos);
  const SftBatch plain = collate_sft(d.examples, d.eos);
  EXPECT_EQ(packed.num_target_tokens, plain.num_target_tokens);
  EXPECT_EQ(packed.num_tokens, plain.num_tokens);
  EXPECT_LT(packed.input_ids.numel(), plain.input_ids.numel());
  auto ids = packed.input_ids.accessor<int64_t, 2>();
  auto tgt = packed.targets.accessor<int64_t, 2>();
  auto pos = packed.positions.accessor<int64_t, 2>();
  auto seg = packed.segments.accessor<int64_t, 2>();
  auto pids = plain.input_ids.accessor<int64_t, 2>();
  auto ptgt = plain.targets.accessor<int64_t, 2>();
  int64_t boundaries = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    int64_t t = 0, s = 0;
    for (size_t i : rows[r].examples) {
      const int64_t n = static_cast<int64_t>(d.examples[i].ids.size());
      for (int64_t k = 0; k < n; ++k, ++t) {
        EXPECT_EQ(ids[r][t], pids[i][k]);
        EXPECT_EQ(tgt[r][t], ptgt[i][k]);
        EXPECT_EQ(pos[r][t], k);
        EXPECT_EQ(seg[r][t], s);
      }
      EXPECT_EQ(tgt[r][t - 1], -100);  // the example's last token: not the next example's first
      ++boundaries;
      ++s;
    }
    for (; t < packed.input_ids.size(1); ++t) {
      EXPECT_EQ(ids[r][t], d.eos);
      EXPECT_EQ(tgt[r][t], -100);
      EXPECT_EQ(seg[r][t], s);  // padding: a segment of its own
    }
  }
  EXPECT_EQ(boundaries, static_cast<int64_t>(d.examples.size()));
}

// Sets the model up as run_sft trains it; returns the parameters a step trains: all of them, or
// those of a LoRA adapter (r 4) attached here, both factors nonzero so that both get gradients.
std::vector<torch::Tensor> trained_params(Transformer& model, bool lora) {
  model->set_kernels(cpu_training_kernels());
  model->set_train_ops(true);
  model->train();
  if (!lora) return model->parameters();
  LoraOptions lo;
  lo.r = 4;
  lo.alpha = 8;
  std::vector<torch::Tensor> params = attach_lora(model, lo).parameters();
  torch::NoGradGuard g;
  for (auto& p : params) p.normal_(0.0, 0.05);
  return params;
}

// Gradients of one step (all examples, normaliser = their target tokens) into fresh slots.
double step_grads(Transformer& model, const std::vector<SftBatch>& batches, double normalizer,
                  const std::vector<torch::Tensor>& params, std::vector<torch::Tensor>& grads) {
  grads.assign(params.size(), torch::Tensor());
  double loss = 0;
  for (const auto& b : batches) loss += sft_loss_grads(model, b, normalizer, /*loss_chunk=*/64, params, grads);
  return loss / normalizer;
}

TEST(SftPacking, PackedStepEqualsUnpackedStepFullModelAndLora) {
  ChatData d = chat_data("pack_step", 16, 7);
  for (const bool lora : {false, true}) {
    Transformer model = load_model(d.model_dir, nullptr, torch::kCPU, torch::kFloat32);
    const std::vector<torch::Tensor> params = trained_params(model, lora);
    // Unpacked: two micro-batches of 8 examples. Packed: rows of 2x the longest example, in two micro-batches.
    const std::vector<SftExample> first(d.examples.begin(), d.examples.begin() + 8), second(d.examples.begin() + 8, d.examples.end());
    const std::vector<SftBatch> plain = {collate_sft(first, d.eos), collate_sft(second, d.eos)};
    const double n = double(plain[0].num_target_tokens + plain[1].num_target_tokens);
    int64_t longest = 0;
    for (const auto& e : d.examples) longest = std::max<int64_t>(longest, e.ids.size());
    const std::vector<PackedRow> rows = pack_sft_examples(d.examples, 2 * longest);
    const size_t half = (rows.size() + 1) / 2;
    const std::vector<SftBatch> packed = {
        collate_packed(d.examples, {rows.begin(), rows.begin() + half}, d.eos),
        collate_packed(d.examples, {rows.begin() + half, rows.end()}, d.eos)};
    ASSERT_EQ(double(packed[0].num_target_tokens + packed[1].num_target_tokens), n);
    std::vector<torch::Tensor> gu, gp;
    const double lu = step_grads(model, plain, n, params, gu), lp = step_grads(model, packed, n, params, gp);
    double rel = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      ASSERT_TRUE(gu[i].defined() && gp[i].defined()) << i;
      const double scale = gu[i].abs().max().item<double>();
      ASSERT_GT(scale, 0) << i;
      rel = std::max(rel, (gp[i] - gu[i]).abs().max().item<double>() / scale);
    }
    std::printf("%s: packed step (%zu rows, %lld slots) vs unpacked (%d rows, %lld slots): loss %.8f vs %.8f "
                "(rel diff %.2e), max gradient diff / max |gradient| over %zu tensors %.2e\n",
                lora ? "LoRA" : "full model", rows.size(), (long long)(packed[0].input_ids.numel() + packed[1].input_ids.numel()),
                16, (long long)(plain[0].input_ids.numel() + plain[1].input_ids.numel()), lp, lu,
                std::abs(lp - lu) / lu, params.size(), rel);
    EXPECT_LE(std::abs(lp - lu) / lu, 1e-6);
    EXPECT_LE(rel, 2e-6);
  }
}

// run_sft drops the columns after the last target (every example's last token predicts nothing):
// the same loss and gradients, plain and packed, with every target kept.
TEST(SftPacking, DroppingTheUntargetedTailKeepsLossAndGradients) {
  ChatData d = chat_data("drop_tail", 12, 5);
  Transformer model = load_model(d.model_dir, nullptr, torch::kCPU, torch::kFloat32);
  model->set_kernels(cpu_training_kernels());
  model->train();
  const std::vector<torch::Tensor> params = model->parameters();
  int64_t longest = 0;
  for (const auto& e : d.examples) longest = std::max<int64_t>(longest, e.ids.size());
  const std::vector<PackedRow> rows = pack_sft_examples(d.examples, 2 * longest);
  for (const SftBatch& full : {collate_sft(d.examples, d.eos), collate_packed(d.examples, rows, d.eos)}) {
    const bool packed = full.segments.defined();
    const SftBatch cut = drop_untargeted_tail(full);
    const int64_t last_target = full.targets.ne(-100).any(0).nonzero().max().item<int64_t>();
    ASSERT_EQ(cut.input_ids.size(1), last_target + 1);
    EXPECT_LT(cut.input_ids.size(1), full.input_ids.size(1));
    if (!packed) {
      EXPECT_EQ(cut.input_ids.size(1), longest - 1);
    }
    EXPECT_EQ(cut.targets.ne(-100).sum().item<int64_t>(), full.num_target_tokens);
    EXPECT_EQ(cut.num_target_tokens, full.num_target_tokens);
    EXPECT_EQ(cut.num_tokens, full.num_tokens);
    for (const auto& [a, b] : {std::pair{cut.input_ids, full.input_ids}, {cut.positions, full.positions}, {cut.targets, full.targets}})
      EXPECT_TRUE(a.equal(b.narrow(1, 0, a.size(1))));
    if (packed) {
      EXPECT_TRUE(cut.segments.equal(full.segments.narrow(1, 0, cut.segments.size(1))));
    }
    const double n = double(full.num_target_tokens);
    std::vector<torch::Tensor> g_full, g_cut;
    const double l_full = step_grads(model, {full}, n, params, g_full), l_cut = step_grads(model, {cut}, n, params, g_cut);
    double rel = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      ASSERT_TRUE(g_full[i].defined() && g_cut[i].defined()) << i;
      rel = std::max(rel, (g_cut[i] - g_full[i]).abs().max().item<double>() / g_full[i].abs().max().item<double>());
    }
    std::printf("%s: %lld -> %lld columns, loss %.8f vs %.8f, max gradient diff / max |gradient| %.2e\n",
                packed ? "packed" : "plain", (long long)full.input_ids.size(1), (long long)cut.input_ids.size(1), l_cut,
                l_full, rel);
    EXPECT_LE(std::abs(l_cut - l_full) / l_full, 1e-6);
    EXPECT_LE(rel, 2e-6);
  }
  SftBatch none = collate_sft(d.examples, d.eos);
  none.targets.fill_(-100);
  EXPECT_EQ(drop_untargeted_tail(none).input_ids.size(1), none.input_ids.size(1));  // nothing to learn: left as is
}

TEST(SftPacking, SharedPrefixHandChecked) {
  SftBatch b;
  b.input_ids = torch::tensor({5, 6, 7, 8, 5, 6, 9, 8}, torch::kLong).view({2, 4});
  b.positions = torch::arange(4).unsqueeze(0).expand({2, 4}).contiguous();
  b.targets = torch::full({2, 4}, -100, torch::kLong);
  b.targets[0][3] = 1;
  mark_shared_prefix(b);
  EXPECT_EQ(b.shared_prefix, 2);  // column 2 differs
  b.targets[1][1] = 7;
  mark_shared_prefix(b);
  EXPECT_EQ(b.shared_prefix, 1);  // column 1 is learned
  b.input_ids[1].copy_(b.input_ids[0]);
  b.targets.fill_(-100);
  mark_shared_prefix(b);
  EXPECT_EQ(b.shared_prefix, 3);  // identical rows: at most T - 1, one column left to continue
  b.positions[1][0] = 1;
  mark_shared_prefix(b);
  EXPECT_EQ(b.shared_prefix, 0);  // positions differ at once
  b.positions[1][0] = 0;
  b.segments = torch::zeros({2, 4}, torch::kLong);
  mark_shared_prefix(b);
  EXPECT_EQ(b.shared_prefix, 0);  // packed rows: never
  SftBatch one;
  one.input_ids = torch::tensor({5, 6, 7}, torch::kLong).view({1, 3});
  one.positions = torch::arange(3).view({1, 3});
  one.targets = torch::full({1, 3}, -100, torch::kLong);
  mark_shared_prefix(one);
  EXPECT_EQ(one.shared_prefix, 0);  // one row: nothing to share
}

// Chat records that all open with the same untargeted tokens (the template renders "Q:" first): the
// step with the prefix run once gives the step's loss and gradients, full model and LoRA.
TEST(SftPacking, SharingTheCommonPrefixKeepsLossAndGradients) {
  ChatData d = chat_data("share_prefix", 12, 9);
  for (const bool lora : {false, true}) {
    Transformer model = load_model(d.model_dir, nullptr, torch::kCPU, torch::kFloat32);
    const std::vector<torch::Tensor> params = trained_params(model, lora);
    const SftBatch plain = drop_untargeted_tail(collate_sft(d.examples, d.eos));
    SftBatch shared = plain;
    mark_shared_prefix(shared);
    ASSERT_GE(shared.shared_prefix, 2);
    ASSERT_TRUE(model->train_ops_active());  // the fused CPU ops: where the loss runs the prefix once
    const double n = double(plain.num_target_tokens);
    std::vector<torch::Tensor> g_plain, g_shared;
    const double l_plain = step_grads(model, {plain}, n, params, g_plain);
    const double l_shared = step_grads(model, {shared}, n, params, g_shared);
    double rel = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      ASSERT_TRUE(g_plain[i].defined() && g_shared[i].defined()) << i;
      rel = std::max(rel, (g_shared[i] - g_plain[i]).abs().max().item<double>() / g_plain[i].abs().max().item<double>());
    }
    std::printf("%s: %lld shared columns of %lld, loss %.8f vs %.8f, max gradient diff / max |gradient| %.2e\n",
                lora ? "LoRA" : "full model", (long long)shared.shared_prefix, (long long)plain.input_ids.size(1),
                l_shared, l_plain, rel);
    EXPECT_LE(std::abs(l_shared - l_plain) / l_plain, 1e-6);
    EXPECT_LE(rel, 2e-6);
  }
}

// Whole runs on the chat set: unpacked, packed one micro-batch after another, packed on 2 threads
// (twice: bit-identical), and with LoRA.
TEST(SftPacking, PackedRunsMatchUnpackedSequentialAndOnThreads) {
  const ChatData d = chat_data("pack_runs", 96, 11);
  const auto examples = std::make_shared<std::vector<SftExample>>(d.examples);
  const SftBatchSource source = [examples](int64_t step, int64_t n) {
    std::vector<SftExample> out;
    for (int64_t j = 0; j < n; ++j) out.push_back((*examples)[(step * n + j) % examples->size()]);
    return out;
  };
  SftOptions o;
  o.steps = 4;
  o.batch_size = 16;
  o.lr = 2e-3;
  o.warmup_steps = 1;
  o.checkpoint_every = 0;
  o.log_every = 0;
  o.tensorboard = false;
  struct Run {
    std::vector<std::pair<std::string, torch::Tensor>> params;
    std::vector<double> losses, efficiency;
  };
  auto run = [&](bool packing, int64_t parallel, int64_t micro, bool lora, const std::string& name) {
    SftOptions x = o;
    x.packing = packing;
    x.packing_length = packing ? 160 : 0;
    x.parallel_micro_batches = parallel;
    x.micro_batch_size = micro;
    if (lora) {
      x.lora.r = 4;
      x.lora.alpha = 8;
    }
    Transformer m = load_model(d.model_dir, nullptr, torch::kCPU, torch::kFloat32);
    torch::manual_seed(0);
    const std::string out = fresh_dir(name);
    run_sft(m, source, x, out, d.eos);
    if (lora) merge_lora(m);
    Run r;
    r.params = hf_state_dict(m);
    for_each_jsonl(out + "/metrics.jsonl", [&](const json& rec, int) {
      r.losses.push_back(rec.at("loss"));
      r.efficiency.push_back(rec.at("packing_efficiency"));
    });
    return r;
  };
  auto diff = [](const Run& a, const Run& b) {
    double loss = 0, param = 0;
    for (size_t s = 0; s < a.losses.size(); ++s) loss = std::max(loss, std::abs(a.losses[s] - b.losses[s]) / a.losses[s]);
    for (size_t i = 0; i < a.params.size(); ++i)
      param = std::max(param, (a.params[i].second - b.params[i].second).abs().max().item<double>());
    return std::make_pair(loss, param);
  };
  const Run plain = run(false, 1, 8, false, "pack_plain"), packed = run(true, 1, 2, false, "pack_seq"),
            threads = run(true, 2, 0, false, "pack_two"), threads_again = run(true, 2, 0, false, "pack_two_again"),
            plain_lora = run(false, 1, 8, true, "pack_plain_lora"), packed_lora = run(true, 2, 0, true, "pack_lora");
  ASSERT_EQ(plain.losses.size(), 4u);
  ASSERT_EQ(packed.losses.size(), 4u);
  const auto [l1, p1] = diff(plain, packed);
  const auto [l2, p2] = diff(plain, threads);
  const auto [l3, p3] = diff(plain_lora, packed_lora);
  std::printf("4 steps on chat records, packed vs unpacked: sequential loss rel diff %.2e, param diff %.2e; "
              "2 threads %.2e, %.2e; LoRA %.2e, %.2e; packing efficiency %.3f (unpacked %.3f)\n",
              l1, p1, l2, p2, l3, p3, packed.efficiency[0], plain.efficiency[0]);
  for (double x : {l1, l2, l3}) EXPECT_LE(x, 1e-5);
  for (double x : {p1, p2, p3}) EXPECT_LE(x, 1e-5);
  EXPECT_EQ(threads.losses, threads_again.losses);
  for (size_t i = 0; i < threads.params.size(); ++i)
    EXPECT_TRUE(torch::equal(threads.params[i].second, threads_again.params[i].second)) << threads.params[i].first;
  for (size_t s = 0; s < 4; ++s) {
    EXPECT_GT(packed.efficiency[s], plain.efficiency[s]);
    EXPECT_GT(packed.efficiency[s], 0.8);
    EXPECT_LE(packed.efficiency[s], 1.0);
  }
}

// A packed run on a chat JSONL file (SftDataset): the loss falls, and a run interrupted after a
// checkpoint resumes to the clean run's metrics and weights.
TEST(SftPacking, PackedChatRunLowersTheLossAndResumes) {
  const std::string dir = fresh_dir("pack_resume");
  const ChatData d = chat_data("pack_resume_model", 0);
  {
    std::string text;
    for (const json& r : chat_records(200, 5)) text += dump_line(r) + "\n";
    write_file_atomic(dir + "/train.jsonl", text);
  }
  SftFormatOptions f;
  f.tokenizer_dir = d.model_dir;
  const SftEncoder enc(d.tok, f, d.eos);
  SftDataset data;
  data.add_jsonl(dir + "/train.jsonl", enc);
  auto source = [&data](int fail_at) {
    SftBatchSource s = data.source(9);
    return SftBatchSource([s, fail_at](int64_t step, int64_t n) {
      if (step == fail_at) throw std::runtime_error("interrupted");
      return s(step, n);
    });
  };
  SftOptions o;
  o.steps = 24;
  o.batch_size = 16;
  o.micro_batch_size = 3;  // packed rows per micro-batch
  o.lr = 3e-3;
  o.min_lr = 3e-4;
  o.warmup_steps = 2;
  o.checkpoint_every = 8;
  o.log_every = 0;
  o.tensorboard = false;
  o.packing = true;

  Transformer clean = load_model(d.model_dir, nullptr, torch::kCPU, torch::kFloat32);
  torch::manual_seed(0);
  const SftRunResult r = run_sft(clean, source(-1), o, dir + "/clean", d.eos);
  std::printf("packed chat SFT: loss %.3f -> %.3f in %lld steps (%.1f s)\n", r.first_loss, r.last_loss,
              (long long)o.steps, r.seconds);
  EXPECT_LT(r.last_loss, 0.6 * r.first_loss);

  Transformer first = load_model(d.model_dir, nullptr, torch::kCPU, torch::kFloat32);
  torch::manual_seed(0);
  EXPECT_THROW(run_sft(first, source(20), o, dir + "/run", d.eos, d.model_dir), std::runtime_error);
  ASSERT_TRUE(path_exists(dir + "/run/checkpoint/state.json"));
  Transformer resumed = load_model(d.model_dir, nullptr, torch::kCPU, torch::kFloat32);
  const SftRunResult rr = run_sft(resumed, source(-1), o, dir + "/run", d.eos, d.model_dir);
  EXPECT_EQ(rr.resumed_from, 16);
  std::vector<int64_t> steps;
  std::vector<double> a, b;
  for_each_jsonl(dir + "/run/metrics.jsonl", [&](const json& rec, int) {
    steps.push_back(rec.at("step"));
    b.push_back(rec.at("loss"));
  });
  for_each_jsonl(dir + "/clean/metrics.jsonl", [&](const json& rec, int) { a.push_back(rec.at("loss")); });
  std::vector<int64_t> want(24);
  std::iota(want.begin(), want.end(), int64_t{1});
  EXPECT_EQ(steps, want);  // no gaps, no repeats
  ASSERT_EQ(a.size(), b.size());
  double loss_diff = 0, param_diff = 0;
  for (size_t s = 0; s < a.size(); ++s) loss_diff = std::max(loss_diff, std::abs(a[s] - b[s]));
  const auto pa = hf_state_dict(clean), pb = hf_state_dict(resumed);
  for (size_t i = 0; i < pa.size(); ++i) param_diff = std::max(param_diff, (pa[i].second - pb[i].second).abs().max().item<double>());
  std::printf("resumed at step 16 vs clean: loss diff %.2e, param diff %.2e\n", loss_diff, param_diff);
  EXPECT_LE(loss_diff, 1e-5);
  EXPECT_LE(param_diff, 1e-5);
}

}  // namespace
}  // namespace r1kit::sft
