// The training rows of one GRPO step packed for forward passes. A group (one prompt and its G
// completions) is the packing unit: a micro-batch holds its prompts once and the completions
// attend to them (Transformer::forward_shared_prefix), so a prompt costs one forward instead of G.
// Groups are ordered by length before packing, so each micro-batch pads its prompts and
// completions only to the longest of similar rows, and a token budget can cap what one forward
// holds (padding included).
//
//   std::vector<PackedBatch> micro = pack_groups(groups, {.max_rows = 32, .max_tokens = 0}, device);
//   for (auto& mb : micro) completion_logprobs(model, mb, options);  // [mb.rows(), Tc]
//
// A group with more completions than max_rows is split into chunks of at most max_rows, each
// with its own copy of the prompt. Packing is a pure function of its inputs (deterministic).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace r1kit::grpo {

// One prompt's completions, and where each sits in the step's flat row order.
struct GroupRows {
  std::vector<int64_t> prompt;                    // non-empty
  std::vector<std::vector<int64_t>> completions;  // G >= 1 (may be empty sequences)
  std::vector<int64_t> rows;                      // flat row of each completion (same size)
};

struct PackOptions {
  int64_t max_rows = 32;    // completions per micro-batch (a group larger than this is chunked)
  int64_t max_tokens = 0;   // padded prompt + completion tokens per micro-batch; 0 = no limit
};

struct PackedBatch {
  torch::Tensor prompt_ids;             // [P, Tp] int64, right-padded with 0
  std::vector<int64_t> prompt_lengths;  // [P]
  torch::Tensor completion_ids;         // [P*G, Tc] int64, right-padded with 0 (Tc >= 1)
  torch::Tensor completion_mask;        // [P*G, Tc] bool: real completion tokens
  std::vector<int64_t> completion_lengths;
  int64_t group_size = 1;               // G: completion rows p*G .. p*G+G-1 continue prompt p
  std::vector<int64_t> rows;            // [P*G] the step's flat row of each completion row
  torch::Tensor row_index;              // the same as an int64 tensor on the batch's device
  int64_t real_tokens = 0;              // prompt + completion tokens without padding

  int64_t num_rows() const { return static_cast<int64_t>(rows.size()); }
};

std::vector<PackedBatch> pack_groups(const std::vector<GroupRows>& groups, const PackOptions& options,
                                     torch::Device device = torch::kCPU);

}  // namespace r1kit::grpo
