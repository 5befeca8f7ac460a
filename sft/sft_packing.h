// Sequence packing for SFT (TRL's `SFTConfig(packing=True)` with its default "bfd" strategy and
// padding-free position ids): the examples of a micro-batch are laid end to end in rows of at most
// `packing_length` tokens instead of each padded to the longest, so a step runs far fewer padding
// tokens when lengths vary (long reasoning traces next to short answers).
//
//   rows    best-fit decreasing: longest example first, each into the open row with the least room
//           that still holds it, else into a new row.
//   batch   positions restart at 0 with every example and `segments` numbers the examples of a row;
//           Transformer::forward_hidden_packed attends only within an example, so each one is
//           computed exactly as if it were alone (RoPE included). Targets never cross an example:
//           the last token of one example predicts nothing (-100), never the next one's first.
//
// Unlike TRL's "bfd" (which truncates), an example longer than the row is an error naming it;
// truncate with SftFormatOptions::max_length <= packing_length instead.
#pragma once
#include <cstdint>
#include <vector>

#include "sft/sft_dataset.h"

namespace r1kit::sft {

struct PackedRow {
  std::vector<size_t> examples;  // indices into the packed examples, in row order
  int64_t length = 0;            // tokens in the row (<= the capacity)
};

// Best-fit decreasing bin packing of items of `lengths` (each in [1, capacity]) into rows of
// `capacity`. Items are taken longest first (ties: lower index first); each goes into the row with
// the least free room that still fits it (ties: the row opened first), else opens a new row. Rows
// come back in the order they were opened. Pure and deterministic.
std::vector<PackedRow> pack_best_fit_decreasing(const std::vector<int64_t>& lengths, int64_t capacity);

// The same over examples; `packing_length` 0 = the longest example's length. An empty example, or
// one longer than packing_length, is an Error naming it (SftExample::where, else its index).
std::vector<PackedRow> pack_sft_examples(const std::vector<SftExample>& examples, int64_t packing_length);

// Packed rows of `examples` -> a batch: row r holds its examples end to end, right-padded (pad_id)
// to the longest row; positions restart at 0 with each example; segments[r, t] is the example's
// place in its row (0, 1, ...; padding gets one more number of its own); targets[r, t] is the next
// token of the same example where that token is learned, else -100.
SftBatch collate_packed(const std::vector<SftExample>& examples, const std::vector<PackedRow>& rows, int64_t pad_id);

}  // namespace r1kit::sft
