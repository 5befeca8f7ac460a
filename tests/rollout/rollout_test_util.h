// Shared helpers of the rollout tests: fixture models and a cache-free reference forward.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "model/checkpoint.h"
#include "rollout/engine.h"
#include "tests/test_util.h"

namespace r1kit::test {

struct FixtureModel {
  Transformer model{nullptr};
  ModelConfig cfg;
  json expected;
};

inline std::string fixture_dir(const std::string& name) { return shared_path("fixtures/" + name); }

inline FixtureModel load_fixture(const std::string& name) {
  FixtureModel f;
  f.model = load_model(fixture_dir(name), &f.cfg, torch::kCPU, torch::kFloat32);
  f.model->eval();
  f.expected = parse_json(read_file(fixture_dir(name) + "/expected.json"), name + "/expected.json");
  return f;
}

inline std::vector<int64_t> fixture_sequence(const FixtureModel& f, const std::string& seq_name) {
  for (const auto& s : f.expected["sequences"])
    if (s["name"] == seq_name) return s["input_ids"].get<std::vector<int64_t>>();
  ADD_FAILURE() << "no sequence " << seq_name;
  return {};
}

// Logits [T, V] of one sequence by a full causal forward without any cache.
inline torch::Tensor full_forward_logits(Transformer& model, const std::vector<int64_t>& ids) {
  torch::NoGradGuard no_grad;
  const int64_t T = static_cast<int64_t>(ids.size());
  auto x = torch::tensor(ids, torch::kLong).view({1, T});
  auto pos = torch::arange(T, torch::kLong).view({1, T});
  return model->forward(x, pos).select(0, 0);
}

// A copy of `src` with a different config (e.g. other EOS ids) and the same weights.
inline Transformer clone_with_config(Transformer& src, const ModelConfig& cfg) {
  Transformer m(cfg);
  load_hf_state_dict(m, hf_state_dict(src));
  m->eval();
  return m;
}

inline PromptRequest request(std::vector<int64_t> ids, int64_t g = 1, int64_t seed = -1) {
  PromptRequest r;
  r.prompt_ids = std::move(ids);
  r.num_samples = g;
  r.seed = seed;
  return r;
}

}  // namespace r1kit::test
