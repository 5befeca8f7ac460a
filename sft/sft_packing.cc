#include "sft/sft_packing.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <string>
#include <utility>

#include "core/check.h"

namespace r1kit::sft {
namespace {

std::string example_name(const std::vector<SftExample>& examples, size_t i) {
  return examples[i].where.empty() ? "example " + std::to_string(i) : "example '" + examples[i].where + "'";
}

}  // namespace

std::vector<PackedRow> pack_best_fit_decreasing(const std::vector<int64_t>& lengths, int64_t capacity) {
  R1_CHECK(capacity >= 1, "packing: row capacity must be >= 1, got ", capacity);
  std::vector<size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lengths[a] > lengths[b]; });
  std::vector<PackedRow> rows;
  std::set<std::pair<int64_t, size_t>> room;  // (free tokens, row) of rows that still have room
  for (size_t i : order) {
    const int64_t n = lengths[i];
    R1_CHECK(n >= 1 && n <= capacity, "packing: item ", i, " has length ", n, ", outside [1, ", capacity, "]");
    // The least room that still fits n; among equal rooms the row opened first.
    auto it = room.lower_bound({n, size_t{0}});
    size_t r;
    if (it == room.end()) {
      r = rows.size();
      rows.emplace_back();
    } else {
      r = it->second;
      room.erase(it);
    }
    rows[r].examples.push_back(i);
    rows[r].length += n;
    if (rows[r].length < capacity) room.insert({capacity - rows[r].length, r});
  }
  return rows;
}

std::vector<PackedRow> pack_sft_examples(const std::vector<SftExample>& examples, int64_t packing_length) {
  R1_CHECK(packing_length >= 0, "sft packing: packing_length must be >= 0 (0 = the longest example), got ",
           packing_length);
  std::vector<int64_t> lengths;
  int64_t longest = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    const int64_t n = static_cast<int64_t>(examples[i].ids.size());
    R1_CHECK(n > 0, "sft packing: ", example_name(examples, i), " is empty");
    lengths.push_back(n);
    longest = std::max(longest, n);
  }
  const int64_t capacity = packing_length > 0 ? packing_length : longest;
  for (size_t i = 0; i < examples.size(); ++i)
    R1_CHECK(lengths[i] <= capacity, "sft packing: ", example_name(examples, i), " has ", lengths[i],
             " tokens, more than packing_length ", capacity,
             " (raise packing_length, or set max_length <= packing_length to truncate examples)");
  return pack_best_fit_decreasing(lengths, capacity);
}

SftBatch collate_packed(const std::vector<SftExample>& examples, const std::vector<PackedRow>& rows, int64_t pad_id) {
  R1_CHECK(!rows.empty(), "collate_packed: no rows");
  const int64_t B = static_cast<int64_t>(rows.size());
  int64_t T = 0;
  for (const auto& row : rows) {
    int64_t n = 0;
    for (size_t i : row.examples) {
      R1_CHECK(i < examples.size(), "collate_packed: example index ", i, " out of range (", examples.size(), " examples)");
      n += static_cast<int64_t>(examples[i].ids.size());
    }
    R1_CHECK(n == row.length, "collate_packed: a row says ", row.length, " tokens, its examples hold ", n);
    T = std::max(T, n);
  }
  SftBatch batch;
  batch.input_ids = torch::full({B, T}, pad_id, torch::kInt64);
  batch.targets = torch::full({B, T}, -100, torch::kInt64);
  batch.positions = torch::zeros({B, T}, torch::kInt64);
  batch.segments = torch::zeros({B, T}, torch::kInt64);
  auto ids = batch.input_ids.accessor<int64_t, 2>();
  auto tgt = batch.targets.accessor<int64_t, 2>();
  auto pos = batch.positions.accessor<int64_t, 2>();
  auto seg = batch.segments.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    int64_t t = 0, s = 0;
    for (size_t i : rows[b].examples) {
      const SftExample& e = examples[i];
      R1_CHECK(e.ids.size() == e.loss_mask.size(), "collate_packed: ", example_name(examples, i), " has ", e.ids.size(),
               " ids and ", e.loss_mask.size(), " mask entries");
      const int64_t n = static_cast<int64_t>(e.ids.size());
      for (int64_t k = 0; k < n; ++k, ++t) {
        ids[b][t] = e.ids[k];
        pos[b][t] = k;
        seg[b][t] = s;
        if (k + 1 < n && e.loss_mask[k + 1]) {  // the example's last token predicts nothing
          tgt[b][t] = e.ids[k + 1];
          ++batch.num_target_tokens;
        }
      }
      batch.num_tokens += n;
      ++s;
    }
    for (int64_t k = 0; t < T; ++k, ++t) {  // padding: a segment of its own, so it attends only to itself
      pos[b][t] = k;
      seg[b][t] = s;
    }
  }
  return batch;
}

}  // namespace r1kit::sft
