// A decode step with fixed shapes, replayed as a CUDA graph on GPUs. Batched decode of a small model
// is bound by kernel launches (a 24-layer decoder launches ~400 kernels per token step, a few ms of
// CPU time against ~1 ms of GPU work); a captured graph launches them all at once.
//
// The step covers every row of a KvCache: each row advances by one token, attention reads all max_len
// slots under a mask, and every index is a device tensor, so nothing in the step depends on host
// values and the shapes never change. Rows not being decoded ("idle": free slots, prompt prefixes
// waiting to be copied) run on a dummy token and write their K/V slot back unchanged, so any row
// state survives. The graph is captured on first use and again whenever the cache or the weights
// move to new memory (in-place weight updates, as the rollout pool does, keep it valid).
//
//   StaticDecoder dec(model, /*cuda_graph=*/true);
//   torch::Tensor logits = dec.step(cache, rows, ids);  // [rows.size(), V] float32; lengths advance
//
// On CPU (or with cuda_graph = false) the same step runs eagerly: that is how it is tested against
// the dynamic-shape decode. Equal to TransformerImpl::forward with a cache up to float rounding.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "model/kv_cache.h"
#include "model/transformer.h"

namespace r1kit {

class StaticDecoder {
 public:
  // Uses CUDA graphs when `cuda_graph` and the model is on CUDA in a build with R1_TORCH_CUDA.
  StaticDecoder(Transformer model, bool cuda_graph);
  ~StaticDecoder();

  // Decodes one token for each `rows[i]` (distinct cache rows, each below max_len) fed `ids[i]` at
  // position length(rows[i]); returns their logits [rows.size(), V] float32 and advances their lengths.
  torch::Tensor step(KvCache& cache, const std::vector<int64_t>& rows, const std::vector<int64_t>& ids);

  bool uses_cuda_graph() const;
  int64_t captures() const { return captures_; }  // graphs captured so far

 private:
  struct Buffers;
  struct Graph;
  void prepare(KvCache& cache);
  torch::Tensor forward(KvCache& cache);  // the static step on the input buffers -> logits [N, V]

  Transformer model_;
  bool cuda_graph_;
  std::unique_ptr<Buffers> buf_;
  std::unique_ptr<Graph> graph_;
  int64_t captures_ = 0;
};

}  // namespace r1kit
