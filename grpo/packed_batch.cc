#include "grpo/packed_batch.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "core/check.h"

namespace r1kit::grpo {

namespace {

// Up to max_rows consecutive completions of one group.
struct Chunk {
  const GroupRows* group = nullptr;
  int64_t first = 0, count = 0;
  int64_t prompt_len = 0, completion_len = 0;  // the longest completion in the chunk
  size_t order = 0;                            // position in input order (ties)
};

PackedBatch build(const std::vector<const Chunk*>& chunks, int64_t G, torch::Device device) {
  const int64_t P = static_cast<int64_t>(chunks.size());
  int64_t Tp = 1, Tc = 1;
  for (const Chunk* c : chunks) Tp = std::max(Tp, c->prompt_len), Tc = std::max(Tc, c->completion_len);
  PackedBatch b;
  b.group_size = G;
  auto prompt = torch::zeros({P, Tp}, torch::kInt64);
  auto comp = torch::zeros({P * G, Tc}, torch::kInt64);
  auto mask = torch::zeros({P * G, Tc}, torch::kBool);
  auto pa = prompt.accessor<int64_t, 2>();
  auto ca = comp.accessor<int64_t, 2>();
  auto ma = mask.accessor<bool, 2>();
  for (int64_t p = 0; p < P; ++p) {
    const Chunk& c = *chunks[p];
    const auto& ids = c.group->prompt;
    for (size_t t = 0; t < ids.size(); ++t) pa[p][t] = ids[t];
    b.prompt_lengths.push_back(c.prompt_len);
    b.real_tokens += c.prompt_len;
    for (int64_t j = 0; j < G; ++j) {
      const int64_t r = p * G + j;
      const auto& completion = c.group->completions[c.first + j];
      for (size_t t = 0; t < completion.size(); ++t) ca[r][t] = completion[t], ma[r][t] = true;
      b.completion_lengths.push_back(static_cast<int64_t>(completion.size()));
      b.rows.push_back(c.group->rows[c.first + j]);
      b.real_tokens += static_cast<int64_t>(completion.size());
    }
  }
  b.prompt_ids = prompt.to(device);
  b.completion_ids = comp.to(device);
  b.completion_mask = mask.to(device);
  b.row_index = torch::tensor(b.rows, torch::kInt64).to(device);
  return b;
}

}  // namespace

std::vector<PackedBatch> pack_groups(const std::vector<GroupRows>& groups, const PackOptions& options,
                                     torch::Device device) {
  R1_CHECK(options.max_rows >= 1, "pack_groups: max_rows must be >= 1, got ", options.max_rows);
  R1_CHECK(options.max_tokens >= 0, "pack_groups: max_tokens must be >= 0, got ", options.max_tokens);
  // 1. Chunks of at most max_rows completions, bucketed by size: one forward_shared_prefix call
  //    needs the same number of completions per prompt.
  std::vector<Chunk> chunks;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const GroupRows& g = groups[gi];
    const int64_t G = static_cast<int64_t>(g.completions.size());
    R1_CHECK(!g.prompt.empty(), "pack_groups: group ", gi, " has an empty prompt");
    R1_CHECK(G >= 1 && g.rows.size() == g.completions.size(), "pack_groups: group ", gi, " has ", G,
             " completions and ", g.rows.size(), " row indices");
    for (int64_t first = 0; first < G; first += options.max_rows) {
      Chunk c;
      c.group = &g;
      c.first = first;
      c.count = std::min(options.max_rows, G - first);
      c.prompt_len = static_cast<int64_t>(g.prompt.size());
      for (int64_t j = first; j < first + c.count; ++j)
        c.completion_len = std::max<int64_t>(c.completion_len, g.completions[j].size());
      c.order = chunks.size();
      chunks.push_back(c);
    }
  }
  std::map<int64_t, std::vector<const Chunk*>, std::greater<>> by_size;
  for (const Chunk& c : chunks) by_size[c.count].push_back(&c);

  // 2. Longest first within a bucket, then greedy filling under the row and token budgets.
  std::vector<PackedBatch> out;
  for (auto& [G, list] : by_size) {
    std::stable_sort(list.begin(), list.end(), [](const Chunk* a, const Chunk* b) {
      return a->prompt_len + a->completion_len > b->prompt_len + b->completion_len;
    });
    std::vector<const Chunk*> current;
    int64_t tp = 0, tc = 0;
    for (const Chunk* c : list) {
      const int64_t n = static_cast<int64_t>(current.size()) + 1;
      const int64_t ntp = std::max(tp, c->prompt_len), ntc = std::max<int64_t>({tc, c->completion_len, 1});
      const bool rows_ok = n * G <= options.max_rows;
      const bool tokens_ok = options.max_tokens == 0 || n * ntp + n * G * ntc <= options.max_tokens;
      if (!current.empty() && !(rows_ok && tokens_ok)) {
        out.push_back(build(current, G, device));
        current.clear();
        tp = tc = 0;
      }
      current.push_back(c);
      tp = std::max(tp, c->prompt_len);
      tc = std::max<int64_t>({tc, c->completion_len, 1});
    }
    if (!current.empty()) out.push_back(build(current, G, device));
  }
  return out;
}

}  // namespace r1kit::grpo
