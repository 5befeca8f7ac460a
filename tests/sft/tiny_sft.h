// Shared set-up of the SFT tests: a small tiny-task model and the tiny task's examples per step.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/tokenizer.h"
#include "recipes/tiny_model.h"
#include "recipes/tiny_task.h"
#include "sft/sft_trainer.h"
#include "tests/test_util.h"

namespace r1kit::sft::tiny {

using test::fresh_dir;

// A small tiny-task model (seconds to train) and its tokenizer.
inline std::string small_model(const std::string& name) {
  const std::string dir = fresh_dir(name) + "/model";
  recipes::TinyModelOptions o;
  o.hidden_size = 64;
  o.num_hidden_layers = 2;
  o.num_attention_heads = 2;
  o.num_key_value_heads = 2;
  o.intermediate_size = 128;
  recipes::create_tiny_model(o, 1, dir);
  return dir;
}

// The examples of step s: tiny-task records seeded by (s, j), as the sft stage does.
inline SftBatchSource tiny_source(const Tokenizer& tok, int64_t eos, int fail_at_step = -1) {
  return [&tok, eos, fail_at_step](int64_t step, int64_t n) {
    if (step == fail_at_step) throw std::runtime_error("interrupted");
    static const recipes::TinyTask task;
    std::vector<SftExample> out;
    for (int64_t j = 0; j < n; ++j) {
      std::mt19937_64 rng(step * 100003 + j);
      out.push_back(encode_sft_example(tok, task.sft_example(rng), {}, eos, "tiny"));
    }
    return out;
  };
}

}  // namespace r1kit::sft::tiny
