// Model-based rewards: the reward model against transformers' Qwen2ForSequenceClassification and
// LlamaForSequenceClassification on tiny random checkpoints (real Qwen3 / Llama-3 tokenizers,
// right-padded batches, texts ending in the pad token), within 1e-4; template rendering; the LLM
// judge's verdict parsing and, on a tiny random causal model, that its answer is the rollout
// engine's greedy completion of the judge prompt and its score the parsed verdict (no verdict: an
// error output, never a 0).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "core/config.h"
#include "core/fs.h"
#include "model/checkpoint.h"
#include "rewards/model_judge.h"
#include "tests/test_util.h"
#include "rewards/model_reward.h"
#include "rewards/registry.h"
#include "tests/test_util.h"
#include "tests/tokenizer_json_util.h"

namespace r1kit::rewards {
namespace {

using test::fresh_dir;

TEST(RewardTemplate, FillsPromptCompletionAndFields) {
  RewardInput in;
  in.prompt = "Q?";
  in.completion = "A.";
  in.fields = {{"answer", "42"}, {"n", 3}};
  EXPECT_EQ(render_reward_template("{prompt} -> {completion} (gold {answer}, n={n}) {{x}}", in),
            "Q? -> A. (gold 42, n=3) {x}");
  try {
    render_reward_template("{missing}", in);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'missing'"), std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// Reward model vs transformers.

TEST(RewardModel, MatchesTransformersSequenceClassification) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"qwen2", "tokenizers/qwen3"}, {"llama", "tokenizers/llama3"}};
  const std::string root = fresh_dir("rm");
  const std::vector<std::string> texts = {
      "What is 2+3? The answer is 5.",
      "Solve x^2 = 4.<think>x is 2 or -2</think> \\boxed{\\pm 2}",
      "short",
      "Ünïcødé and emoji 🙂 and a longer tail so that this sequence is the longest of the batch by far, "
      "which makes the others padded on the right.",
  };
  json jobs = json::array();
  for (const auto& [arch, tok] : cases) {
    R1_REQUIRE_FILE(test::shared_path(tok + "/tokenizer.json"));
    for (int labels : {1, 3}) {
      std::vector<std::string> t = texts;
      // Ends with the pad token: transformers pools at the last token that is not pad.
      t.push_back(arch == "qwen2" ? "ends with pad<|endoftext|>" : "ends with pad<|end_of_text|>");
      const std::string name = arch + "_" + std::to_string(labels);
      jobs.push_back({{"arch", arch}, {"num_labels", labels}, {"tokenizer", test::shared_path(tok)},
                      {"out_dir", root + "/" + name}, {"texts", t}, {"out", root + "/" + name + ".json"}});
    }
  }
  write_file_atomic(root + "/jobs.json", jobs.dump());
  const std::string cmd = "python3 " + std::string(R1_SOURCE_DIR) + "/tests/rewards/rm_reference.py " + root + "/jobs.json";
  const int status = std::system(cmd.c_str());
  const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  if (rc == 77) GTEST_SKIP() << "python3 lacks torch/transformers";
  ASSERT_EQ(rc, 0);
  for (const json& job : jobs) {
    const json ref = parse_json(read_file(job["out"].get<std::string>()), "reference");
    const auto want = ref["logits"].get<std::vector<std::vector<double>>>();
    const int labels = job["num_labels"].get<int>();
    double max_diff = 0;
    for (const std::string activation : {"none", "sigmoid", "softmax"}) {
      RewardModelOptions o;
      o.model = job["out_dir"].get<std::string>();
      o.batch_size = 2;  // several batches, each padded
      o.label = labels - 1;
      o.activation = activation;
      RewardModelReward rm(o);
      ASSERT_EQ(rm.num_labels(), labels);
      std::vector<RewardInput> inputs;
      for (const auto& text : job["texts"]) {
        const std::string s = text.get<std::string>();
        RewardInput in;
        in.prompt = s.substr(0, s.size() / 3);  // the default template joins them again
        in.completion = s.substr(s.size() / 3);
        inputs.push_back(in);
      }
      const auto outs = rm.score_batch(inputs, nullptr);
      for (size_t i = 0; i < outs.size(); ++i) {
        ASSERT_FALSE(outs[i].error) << outs[i].error_message;
        const auto got = outs[i].diagnostics["logits"].get<std::vector<double>>();
        for (int k = 0; k < labels; ++k) max_diff = std::max(max_diff, std::abs(got[k] - want[i][k]));
        double expect = want[i][labels - 1];
        if (activation == "sigmoid") expect = 1.0 / (1.0 + std::exp(-expect));
        if (activation == "softmax") {
          double z = 0;
          for (int k = 0; k < labels; ++k) z += std::exp(want[i][k] - want[i][labels - 1]);
          expect = 1.0 / z;
        }
        EXPECT_NEAR(outs[i].score, expect, 1e-4) << job["arch"] << " " << activation << " text " << i;
      }
    }
    std::printf("[ rm ] %s, %d label(s): r1kit vs transformers %s scores of %zu texts: max diff %.3g\n",
                job["arch"].get<std::string>().c_str(), labels, job["arch"] == "qwen2" ? "Qwen2ForSequenceClassification"
                                                                                      : "LlamaForSequenceClassification",
                want.size(), max_diff);
    EXPECT_LE(max_diff, 1e-4);
  }
  // Through the registry, with the usual config errors; an over-long text is an error output.
  const std::string rm_dir = jobs[0]["out_dir"].get<std::string>();
  ConfigNode node(json{{"model", rm_dir}, {"max_length", 4}}, "rewards.yaml", "rewards[0].options");
  auto reward = RewardRegistry::global().create("reward_model", node);
  RewardInput long_in;
  long_in.completion = "this text has more than four tokens for sure";
  RewardOutput o = reward->score_one(long_in);
  EXPECT_TRUE(o.error);
  EXPECT_NE(o.error_message.find("max_length"), std::string::npos);
  ConfigNode bad(json{{"model", rm_dir}, {"label", 5}}, "rewards.yaml", "rewards[0].options");
  try {
    RewardRegistry::global().create("reward_model", bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rewards[0].options.model"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// LLM judge.

TEST(LlmJudge, ParseVerdict) {
  JudgeOptions o;
  EXPECT_EQ(parse_verdict("Looks fine.\nVerdict: YES", o), 1.0);
  EXPECT_EQ(parse_verdict("Verdict: yes ... on reflection, Verdict: **no**", o), 0.0);  // last match
  o.last_match = false;
  EXPECT_EQ(parse_verdict("Verdict: yes ... Verdict: no", o), 1.0);
  EXPECT_THROW(parse_verdict("I cannot decide.", o), Error);
  JudgeOptions numeric;
  numeric.labels.clear();
  numeric.verdict_regex = R"(Score:\s*([0-9.]+))";
  numeric.scale = 0.1;
  EXPECT_NEAR(parse_verdict("Score: 7", numeric), 0.7, 1e-12);
  numeric.verdict_regex = R"(Score:\s*(\S+))";
  EXPECT_THROW(parse_verdict("Score: high", numeric), Error);
  JudgeOptions bad_label;
  bad_label.verdict_regex = R"(Verdict:\s*(\w+))";
  EXPECT_THROW(parse_verdict("Verdict: maybe", bad_label), Error);
}

// A tiny random causal model over the letters a..o (EOS 15) with a byte-level tokenizer.
std::string make_tiny_judge(const std::string& root) {
  const std::string dir = root + "/judge";
  make_dirs(dir);
  json vocab = json::object();
  const std::string letters = "abcdefghijklmno";
  for (size_t i = 0; i < letters.size(); ++i) vocab[std::string(1, letters[i])] = static_cast<int>(i);
  write_file_atomic(dir + "/tokenizer.json", test::byte_level_bpe_tokenizer_json(vocab, "<eos>", 15, false).dump());
  json config = {{"model_type", "qwen2"}, {"architectures", {"Qwen2ForCausalLM"}}, {"vocab_size", 16},
                 {"hidden_size", 32}, {"intermediate_size", 64}, {"num_hidden_layers", 2},
                 {"num_attention_heads", 2}, {"num_key_value_heads", 2}, {"max_position_embeddings", 256},
                 {"rms_norm_eps", 1e-6}, {"rope_theta", 10000.0}, {"tie_word_embeddings", true},
                 {"eos_token_id", 15}, {"torch_dtype", "float32"}};
  ModelConfig cfg = ModelConfig::from_hf_json(config, "judge config");
  torch::manual_seed(7);
  Transformer model(cfg);
  SaveOptions save;
  save.tokenizer_dir = dir;
  save_model(model, cfg, dir, save);
  return dir;
}

TEST(LlmJudge, AnswersAreTheEnginesGreedyCompletionAndScoresTheirVerdicts) {
  const std::string root = fresh_dir("judge");
  JudgeOptions o;
  o.model = make_tiny_judge(root);
  o.chat = false;
  o.template_text = "{prompt}k{completion}";
  o.verdict_regex = "(a|b)";
  o.labels = {{"a", 1.0}, {"b", 0.0}};
  o.last_match = false;
  o.max_new_tokens = 6;
  o.batch_size = 3;
  JudgeReward judge(o);
  std::vector<RewardInput> inputs;
  for (const char* p : {"abc", "cde", "efg", "ghi", "jkl", "mno", "aaa"}) {
    RewardInput in;
    in.prompt = p;
    in.completion = std::string(p).substr(1);
    inputs.push_back(in);
  }
  const auto outs = judge.score_batch(inputs, nullptr);
  // The same prompts through the engine directly, one at a time.
  Transformer model = load_model(o.model, nullptr, torch::kCPU, torch::kFloat32);
  const Tokenizer tok = Tokenizer::from_file(o.model);
  GenerationEngine engine(model, EngineOptions{}, [&](const std::vector<int64_t>& ids) {
    return tok.decode(std::vector<int32_t>(ids.begin(), ids.end()), true);
  });
  SamplingOptions so;
  so.temperature = 0;
  so.max_new_tokens = 6;
  int scored = 0, errors = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_EQ(judge.prompt_of(inputs[i]), inputs[i].prompt + "k" + inputs[i].completion);
    PromptRequest r;
    const auto ids = tok.encode(judge.prompt_of(inputs[i]), true);
    r.prompt_ids.assign(ids.begin(), ids.end());
    const std::string answer = engine.generate({r}, so)[0].samples[0].text;
    EXPECT_EQ(outs[i].diagnostics["judge_answer"], answer) << i;
    const bool has_verdict = answer.find_first_of("ab") != std::string::npos;
    EXPECT_EQ(outs[i].error, !has_verdict) << answer;
    if (has_verdict) {
      EXPECT_EQ(outs[i].score, answer[answer.find_first_of("ab")] == 'a' ? 1.0 : 0.0) << answer;
      ++scored;
    } else {
      EXPECT_NE(outs[i].error_message.find("no verdict"), std::string::npos);
      ++errors;
    }
  }
  std::printf("[ judge ] %d answers scored, %d without a verdict (error outputs)\n", scored, errors);
  // Through the registry.
  ConfigNode node(json{{"model", o.model}, {"chat", false}, {"verdict_regex", "no group"}}, "rewards.yaml", "r.options");
  EXPECT_THROW(RewardRegistry::global().create("llm_judge", node), Error);
}

}  // namespace
}  // namespace r1kit::rewards
