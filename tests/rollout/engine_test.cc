// GenerationEngine on the tiny fixture checkpoints: greedy output against the independent
// reference continuation, batched / continuously batched generation against one-at-a-time,
// one prefill per prompt, seeded reproducibility, log-probs against a full forward, finish
// reasons, stop tokens and stop strings, and clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "rollout/engine.h"
#include "tests/rollout/rollout_test_util.h"

using namespace r1kit;
using namespace r1kit::test;

namespace {

SamplingOptions greedy_options(int64_t max_new) {
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = max_new;
  o.ignore_eos = true;
  return o;
}

// Prompts of several lengths cut from the fixture sequences.
std::vector<PromptRequest> mixed_prompts(const FixtureModel& f) {
  auto len100 = fixture_sequence(f, "len100");
  auto cut = [&](size_t a, size_t b) { return std::vector<int64_t>(len100.begin() + a, len100.begin() + b); };
  return {request(fixture_sequence(f, "len7")), request(fixture_sequence(f, "len33")), request(cut(0, 50)),
          request(cut(10, 17)), request(fixture_sequence(f, "len1")), request(cut(3, 90)), request(cut(40, 47)),
          request(cut(60, 61))};
}

// Greedy continuation by re-running the whole sequence every step (no cache).
std::vector<int64_t> naive_greedy(Transformer& model, std::vector<int64_t> ids, int64_t n) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) {
    auto logits = full_forward_logits(model, ids);
    out.push_back(logits.select(0, logits.size(0) - 1).argmax().item<int64_t>());
    ids.push_back(out.back());
  }
  return out;
}

void expect_same_groups(const std::vector<Group>& a, const std::vector<Group>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].samples.size(), b[i].samples.size()) << what;
    for (size_t j = 0; j < a[i].samples.size(); ++j) {
      const Sample& x = a[i].samples[j];
      const Sample& y = b[i].samples[j];
      EXPECT_EQ(x.completion_ids, y.completion_ids) << what << ": request " << i << " sample " << j;
      EXPECT_EQ(x.finish_reason, y.finish_reason) << what << ": request " << i << " sample " << j;
      ASSERT_EQ(x.logprobs.size(), y.logprobs.size());
      for (size_t t = 0; t < x.logprobs.size(); ++t) EXPECT_NEAR(x.logprobs[t], y.logprobs[t], 1e-4);
    }
  }
}

}  // namespace

class EngineFixture : public testing::TestWithParam<std::string> {};

TEST_P(EngineFixture, GreedyEqualsReferenceContinuation) {
  R1_REQUIRE_FILE(fixture_dir(GetParam()) + "/expected.json");
  auto f = load_fixture(GetParam());
  const auto& g = f.expected["greedy"];
  auto prompt = g["prompt_ids"].get<std::vector<int64_t>>();
  auto expected = g["new_tokens"].get<std::vector<int64_t>>();
  GenerationEngine engine(f.model);
  auto groups = engine.generate({request(prompt)}, greedy_options(static_cast<int64_t>(expected.size())));
  ASSERT_EQ(groups.size(), 1u);
  const Sample& s = groups[0].samples[0];
  EXPECT_EQ(s.completion_ids, expected);
  EXPECT_EQ(s.finish_reason, FinishReason::kLength);
  EXPECT_EQ(groups[0].prompt_ids, prompt);
  // Same tokens from the cache-free loop (checks the test's own reference path too).
  EXPECT_EQ(naive_greedy(f.model, prompt, 6), std::vector<int64_t>(expected.begin(), expected.begin() + 6));
}

TEST_P(EngineFixture, BatchedAndContinuousGreedyEqualOneAtATime) {
  R1_REQUIRE_FILE(fixture_dir(GetParam()) + "/expected.json");
  auto f = load_fixture(GetParam());
  auto prompts = mixed_prompts(f);
  SamplingOptions o = greedy_options(12);
  // A stop token that some continuations emit early, so sequences finish at different steps.
  GenerationEngine probe(f.model);
  o.stop_token_ids = {probe.generate({prompts[0]}, o)[0].samples[0].completion_ids[3]};

  std::vector<Group> alone;
  for (const auto& p : prompts) alone.push_back(probe.generate({p}, o)[0]);
  for (size_t i = 0; i < alone.size(); ++i) alone[i].index = static_cast<int64_t>(i);
  int early = 0;
  for (const auto& g : alone) early += g.samples[0].completion_ids.size() < 12;
  EXPECT_GT(early, 0) << "the test needs sequences that finish early";

  GenerationEngine batched(f.model);  // every prompt in one batch
  expect_same_groups(batched.generate(prompts, o), alone, "batched");
  EngineOptions small;
  small.max_batch = 3;  // continuous batching: 8 prompts through 3 slots
  GenerationEngine continuous(f.model, small);
  expect_same_groups(continuous.generate(prompts, o), alone, "continuous");
  EXPECT_GT(continuous.stats().decode_steps, batched.stats().decode_steps);
  // G greedy samples of one prompt are all the one-at-a-time continuation.
  auto g3 = continuous.generate({request(prompts[1].prompt_ids, 3)}, o)[0];
  for (const auto& s : g3.samples) EXPECT_EQ(s.completion_ids, alone[1].samples[0].completion_ids);
  // Chunked prefill (8-token chunks through the cache) gives the same tokens.
  EngineOptions chunked;
  chunked.max_prefill_tokens = 8;
  GenerationEngine chunk_engine(f.model, chunked);
  expect_same_groups(chunk_engine.generate(prompts, o), alone, "chunked prefill");
}

TEST_P(EngineFixture, SamplesOfAPromptShareOnePrefill) {
  R1_REQUIRE_FILE(fixture_dir(GetParam()) + "/expected.json");
  auto f = load_fixture(GetParam());
  auto prompts = mixed_prompts(f);
  std::vector<PromptRequest> reqs = {request(prompts[0].prompt_ids, 4), request(prompts[1].prompt_ids, 4),
                                     request(prompts[2].prompt_ids, 4)};
  SamplingOptions o;
  o.max_new_tokens = 10;
  o.ignore_eos = true;
  o.seed = 3;
  for (int64_t slots : {64, 5}) {  // all at once, and samples queued behind a held prompt
    EngineOptions eo;
    eo.max_batch = slots;
    GenerationEngine engine(f.model, eo);
    auto groups = engine.generate(reqs, o);
    const EngineStats& st = engine.stats();
    ASSERT_EQ(st.prefills_per_request.size(), reqs.size());
    for (const auto& [index, count] : st.prefills_per_request) EXPECT_EQ(count, 1) << "request " << index;
    int64_t prompt_tokens = 0;
    for (const auto& r : reqs) prompt_tokens += static_cast<int64_t>(r.prompt_ids.size());
    EXPECT_EQ(st.prefill_tokens, prompt_tokens) << "each prompt runs through the model exactly once";
    EXPECT_EQ(st.prefix_copies, 3 * 3) << "G-1 copies per prompt; the last sample reuses the prefilled slot";
    for (const auto& g : groups) {
      ASSERT_EQ(g.samples.size(), 4u);
      std::set<std::vector<int64_t>> distinct;
      for (size_t j = 0; j < g.samples.size(); ++j) {
        EXPECT_EQ(g.samples[j].sample_index, static_cast<int64_t>(j));
        EXPECT_EQ(g.samples[j].completion_ids.size(), 10u);
        distinct.insert(g.samples[j].completion_ids);
      }
      EXPECT_GT(distinct.size(), 1u) << "samples of a group use different random streams";
    }
  }
}

TEST_P(EngineFixture, SeededSamplingIsReproducibleWhateverTheBatch) {
  R1_REQUIRE_FILE(fixture_dir(GetParam()) + "/expected.json");
  auto f = load_fixture(GetParam());
  auto prompts = mixed_prompts(f);
  SamplingOptions o;
  o.temperature = 0.9;
  o.top_p = 0.95;
  o.max_new_tokens = 16;
  auto target = request(prompts[1].prompt_ids, 3, /*seed=*/7);
  GenerationEngine engine(f.model);
  auto a = engine.generate({target}, o);
  auto b = engine.generate({target}, o);
  expect_same_groups(a, b, "same call twice");
  EngineOptions small;
  small.max_batch = 4;
  GenerationEngine other(f.model, small);
  auto mixed = other.generate({request(prompts[0].prompt_ids, 2), target, request(prompts[5].prompt_ids, 3)}, o);
  expect_same_groups(a, {mixed[1]}, "inside another batch");
  // A derived seed depends on (options.seed, index); a different seed gives different samples.
  auto c = engine.generate({request(prompts[1].prompt_ids, 3, 8)}, o);
  EXPECT_NE(c[0].samples[0].completion_ids, a[0].samples[0].completion_ids);
  o.seed = 11;
  auto d1 = engine.generate({request(prompts[0].prompt_ids), request(prompts[1].prompt_ids)}, o);
  auto d2 = other.generate({request(prompts[0].prompt_ids), request(prompts[1].prompt_ids)}, o);
  expect_same_groups(d1, d2, "derived seeds");
  EXPECT_EQ(d1[1].seed, derive_seed(11, 1));
}

TEST_P(EngineFixture, SamplingLogprobsEqualFullForwardRecompute) {
  R1_REQUIRE_FILE(fixture_dir(GetParam()) + "/expected.json");
  auto f = load_fixture(GetParam());
  auto prompts = mixed_prompts(f);
  struct Case { double T, top_p; int64_t top_k; double penalty; };
  for (const Case& c : {Case{1.0, 1.0, 0, 1.0}, Case{0.7, 0.9, 40, 1.0}, Case{1.3, 1.0, 0, 1.2}, Case{0.0, 1.0, 0, 1.0}}) {
    SCOPED_TRACE(testing::Message() << "T=" << c.T << " top_p=" << c.top_p << " top_k=" << c.top_k);
    SamplingOptions o;
    o.temperature = c.T;
    o.top_p = c.top_p;
    o.top_k = c.top_k;
    o.repetition_penalty = c.penalty;
    o.max_new_tokens = 24;
    o.seed = 5;
    EngineOptions eo;
    eo.max_batch = 4;
    GenerationEngine engine(f.model, eo);
    auto groups = engine.generate({request(prompts[0].prompt_ids, 3), request(prompts[2].prompt_ids, 2)}, o);
    const double T = c.T == 0 ? 1.0 : c.T;
    double worst = 0;
    for (const auto& g : groups)
      for (const auto& s : g.samples) {
        std::vector<int64_t> ids = g.prompt_ids;
        ids.insert(ids.end(), s.completion_ids.begin(), s.completion_ids.end());
        auto lp = torch::log_softmax(full_forward_logits(f.model, ids) / T, -1);
        const int64_t P = static_cast<int64_t>(g.prompt_ids.size());
        ASSERT_EQ(s.logprobs.size(), s.completion_ids.size());
        for (size_t t = 0; t < s.completion_ids.size(); ++t) {
          const double ref = lp[P - 1 + static_cast<int64_t>(t)][s.completion_ids[t]].item<double>();
          worst = std::max(worst, std::abs(ref - s.logprobs[t]));
        }
      }
    EXPECT_LT(worst, 1e-4);
  }
}

TEST_P(EngineFixture, RepetitionPenaltyMatchesReferenceLoop) {
  R1_REQUIRE_FILE(fixture_dir(GetParam()) + "/expected.json");
  auto f = load_fixture(GetParam());
  auto prompt = f.expected["greedy"]["prompt_ids"].get<std::vector<int64_t>>();
  const double penalty = 1.5;
  // HF RepetitionPenaltyLogitsProcessor over prompt + generated tokens, then argmax.
  std::vector<int64_t> ids = prompt, expected;
  for (int i = 0; i < 20; ++i) {
    auto logits = full_forward_logits(f.model, ids);
    auto last = logits.select(0, logits.size(0) - 1).clone();
    for (int64_t t : std::set<int64_t>(ids.begin(), ids.end())) {
      float l = last[t].item<float>();
      last[t] = l > 0 ? l / penalty : l * penalty;
    }
    expected.push_back(last.argmax().item<int64_t>());
    ids.push_back(expected.back());
  }
  SamplingOptions o = greedy_options(20);
  o.repetition_penalty = penalty;
  GenerationEngine engine(f.model);
  auto out = engine.generate({request(prompt, 2)}, o);
  EXPECT_EQ(out[0].samples[0].completion_ids, expected);
  EXPECT_EQ(out[0].samples[1].completion_ids, expected);
}

TEST_P(EngineFixture, StopTokensEosAndLength) {
  R1_REQUIRE_FILE(fixture_dir(GetParam()) + "/expected.json");
  auto f = load_fixture(GetParam());
  auto prompt = f.expected["greedy"]["prompt_ids"].get<std::vector<int64_t>>();
  auto full = f.expected["greedy"]["new_tokens"].get<std::vector<int64_t>>();
  const int64_t stop = full[4];
  const size_t first = std::find(full.begin(), full.end(), stop) - full.begin();
  std::vector<int64_t> upto(full.begin(), full.begin() + first + 1);

  SamplingOptions o = greedy_options(20);
  o.stop_token_ids = {stop};
  GenerationEngine engine(f.model);
  auto s = engine.generate({request(prompt)}, o)[0].samples[0];
  EXPECT_EQ(s.completion_ids, upto) << "the stop token is kept in the ids";
  EXPECT_EQ(s.finish_reason, FinishReason::kStop);
  EXPECT_EQ(s.stop_reason, "token:" + std::to_string(stop));

  // The model's EOS ids (config / generation_config.json) stop unless ignore_eos.
  ModelConfig cfg = f.cfg;
  cfg.eos_token_ids = {stop};
  GenerationEngine eos_engine(clone_with_config(f.model, cfg));
  o.stop_token_ids.clear();
  o.ignore_eos = false;
  EXPECT_EQ(eos_engine.generate({request(prompt)}, o)[0].samples[0].completion_ids, upto);
  o.ignore_eos = true;
  EXPECT_EQ(eos_engine.generate({request(prompt)}, o)[0].samples[0].completion_ids, full);

  o.max_new_tokens = 3;
  auto l = engine.generate({request(prompt)}, o)[0].samples[0];
  EXPECT_EQ(l.completion_ids.size(), 3u);
  EXPECT_EQ(l.finish_reason, FinishReason::kLength);
  EXPECT_EQ(l.stop_reason, "");
}

// A sample whose very first token stops it finishes inside the first sampling step, together with
// its whole group; the engine must not touch the freed sample or group afterwards (ASan caught this).
TEST_P(EngineFixture, FirstTokenStopFinishesWholeGroups) {
  R1_REQUIRE_FILE(fixture_dir(GetParam()) + "/expected.json");
  auto f = load_fixture(GetParam());
  auto prompt = f.expected["greedy"]["prompt_ids"].get<std::vector<int64_t>>();
  const int64_t first = f.expected["greedy"]["new_tokens"][0].get<int64_t>();
  GenerationEngine engine(f.model);
  SamplingOptions o = greedy_options(20);
  o.stop_token_ids = {first};
  auto groups = engine.generate({request(prompt, 4), request(prompt, 3)}, o);
  ASSERT_EQ(groups.size(), 2u);
  for (const auto& g : groups)
    for (const auto& s : g.samples) {
      EXPECT_EQ(s.completion_ids, std::vector<int64_t>{first});
      EXPECT_EQ(s.finish_reason, FinishReason::kStop);
    }
  o.stop_token_ids.clear();
  o.max_new_tokens = 1;
  groups = engine.generate({request(prompt, 4), request(prompt, 2)}, o);
  for (const auto& g : groups)
    for (const auto& s : g.samples) {
      EXPECT_EQ(s.completion_ids.size(), 1u);
      EXPECT_EQ(s.finish_reason, FinishReason::kLength);
    }
}

TEST_P(EngineFixture, StopStringSpanningTokensStopsAndCutsText) {
  R1_REQUIRE_FILE(fixture_dir(GetParam()) + "/expected.json");
  auto f = load_fixture(GetParam());
  auto prompt = f.expected["greedy"]["prompt_ids"].get<std::vector<int64_t>>();
  auto full = f.expected["greedy"]["new_tokens"].get<std::vector<int64_t>>();
  // Each id decodes to "<id>|": a stop string made of the end of one token's text and the start
  // of the next one's spans a token boundary.
  DecodeFn decode = [](const std::vector<int64_t>& ids) {
    std::string s;
    for (int64_t id : ids) s += std::to_string(id) + "|";
    return s;
  };
  const std::string piece6 = std::to_string(full[6]) + "|", piece7 = std::to_string(full[7]);
  const std::string stop = piece6.substr(piece6.size() - 2) + piece7.substr(0, 1);
  // Expected: the first token whose text completes the stop string.
  std::string text;
  size_t last = 0;
  for (; last < full.size(); ++last) {
    text += std::to_string(full[last]) + "|";
    if (text.find(stop) != std::string::npos) break;
  }
  ASSERT_LE(last, 7u);
  SamplingOptions o = greedy_options(20);
  o.stop_strings = {"never-appears", stop};
  GenerationEngine engine(f.model, EngineOptions(), decode);
  auto s = engine.generate({request(prompt, 2)}, o)[0].samples[1];
  EXPECT_EQ(s.completion_ids, std::vector<int64_t>(full.begin(), full.begin() + last + 1));
  EXPECT_EQ(s.finish_reason, FinishReason::kStop);
  EXPECT_EQ(s.stop_reason, stop);
  EXPECT_EQ(s.text, text.substr(0, text.find(stop)));
  // Without stop strings the text is the whole completion.
  o.stop_strings.clear();
  auto whole = engine.generate({request(prompt)}, o)[0].samples[0];
  EXPECT_EQ(whole.text, decode(full));
}

TEST_P(EngineFixture, BadRequestsGiveClearErrors) {
  R1_REQUIRE_FILE(fixture_dir(GetParam()) + "/expected.json");
  auto f = load_fixture(GetParam());
  auto prompt = f.expected["greedy"]["prompt_ids"].get<std::vector<int64_t>>();
  auto expect_error = [](const std::function<void()>& fn, const std::string& part) {
    try {
      fn();
      ADD_FAILURE() << "expected an error mentioning " << part;
    } catch (const r1kit::Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  EngineOptions tiny;
  tiny.token_budget = 20;
  GenerationEngine small(f.model, tiny);
  SamplingOptions o = greedy_options(20);
  expect_error([&] { small.generate({request(prompt)}, o); }, "token budget");
  o.max_new_tokens = 8;  // 7 + 8 - 1 = 14 tokens: one slot fits, two do not
  EXPECT_NO_THROW(small.generate({request(prompt)}, o));
  expect_error([&] { small.generate({request(prompt, 2)}, o); }, "2 slots");
  GenerationEngine engine(f.model);
  expect_error([&] { engine.generate({request({1, f.cfg.vocab_size})}, o); }, "outside the vocabulary");
  expect_error([&] { engine.generate({request({})}, o); }, "empty prompt");
  o.stop_strings = {"x"};
  expect_error([&] { engine.generate({request(prompt)}, o); }, "tokenizer");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EngineFixture, testing::Values("tiny-qwen2", "tiny-llama"));
