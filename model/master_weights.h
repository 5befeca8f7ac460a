// Mixed-precision training with fp32 master weights: the model's parameters stay in bf16 (or fp16)
// for forward, backward and decode, while an fp32 copy of every trainable parameter ("master") and
// the AdamW moments live here. Each optimiser step runs AdamW on the fp32 masters and rounds them
// back into the model. Pure bf16 training loses small updates: bf16 keeps 8 significant bits, so an
// update of lr * 1 = 1e-6 never changes a weight above ~2.4e-4 (half a bf16 ulp); the masters
// accumulate such updates until they cross a rounding boundary. bf16 has fp32's exponent range, so
// no loss scaling is needed (fp16 would need it and is not offered for training).
//
//   MasterWeights opt(trainable_params, torch::optim::AdamWOptions(lr));
//   per micro-batch: loss.backward(); opt.accumulate_grads();   // bf16 grads -> fp32, summed there
//   per step:        opt.set_lr(lr); norm = opt.clip_grad_norm(max); opt.step(); opt.zero_grad();
//   checkpoints:     opt.save(archive) / opt.load(archive)       // optimizer state + masters
//
// When every parameter is already float32 there are no copies: the AdamW runs on the parameters
// themselves and save() writes exactly what torch::optim::AdamW::save writes (old checkpoints load).
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace r1kit {

class MasterWeights {
 public:
  // `params`: the trainable parameters (any floating dtype, all on one device).
  MasterWeights(std::vector<torch::Tensor> params, const torch::optim::AdamWOptions& options);

  // True when fp32 masters are kept (some parameter is not float32).
  bool enabled() const { return enabled_; }
  // The AdamW over the masters (over the parameters themselves when !enabled()).
  torch::optim::AdamW& optimizer() { return *optimizer_; }
  // The fp32 tensors AdamW updates (the parameters themselves when !enabled()).
  const std::vector<torch::Tensor>& masters() const { return masters_; }
  // The model's trainable parameters, in the order of masters().
  const std::vector<torch::Tensor>& params() const { return params_; }

  void set_lr(double lr);
  // Adds each parameter's gradient (converted to fp32) into its master's gradient and clears the
  // parameter's. Call after every backward of an accumulated batch so the sum is formed in fp32.
  // A no-op when !enabled().
  void accumulate_grads();
  // The same for parameter i alone (a gradient hook folds each gradient as soon as it is final).
  void accumulate_grad(size_t i);
  // accumulate_grads(), then clips the global L2 norm of the fp32 gradients to max_norm (infinity:
  // no clipping). Returns the norm before clipping.
  double clip_grad_norm(double max_norm);
  // accumulate_grads(), AdamW step on the masters, masters rounded into the parameters.
  void step();
  // Clears the gradients of parameters and masters.
  void zero_grad();

  // Optimizer state, plus the masters under "r1kit_master_weights" when enabled().
  void save(torch::serialize::OutputArchive& archive) const;
  // Loads what save() wrote and copies the masters into the parameters. A checkpoint without
  // masters (written by pure-precision training) starts the masters from the parameters.
  void load(torch::serialize::InputArchive& archive);
  void save_to_file(const std::string& path) const;  // atomically (temp + rename)
  void load_from_file(const std::string& path, torch::Device device);

 private:
  void copy_masters_to_params();

  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> masters_;
  bool enabled_ = false;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
};

}  // namespace r1kit
