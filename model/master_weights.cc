#include "model/master_weights.h"

#include <sstream>

#include "core/check.h"
#include "core/fs.h"
#include "model/fused_adamw.h"

namespace r1kit {

namespace {
constexpr const char* kMastersKey = "r1kit_master_weights";
}  // namespace

MasterWeights::MasterWeights(std::vector<torch::Tensor> params, const torch::optim::AdamWOptions& options)
    : params_(std::move(params)) {
  for (const auto& p : params_) {
    R1_CHECK(p.is_floating_point(), "MasterWeights: parameter of dtype ", p.scalar_type(), " is not floating point");
    R1_CHECK(p.scalar_type() != torch::kFloat16, "training float16 weights needs loss scaling, which r1kit does not "
             "do: train in bfloat16 (fp32 master weights) or float32");
    enabled_ = enabled_ || p.scalar_type() != torch::kFloat32;
  }
  if (enabled_) {
    torch::NoGradGuard no_grad;
    masters_.reserve(params_.size());
    for (const auto& p : params_) masters_.push_back(p.detach().to(torch::kFloat32).clone().requires_grad_(true));
  } else {
    masters_ = params_;
  }
  optimizer_ = std::make_unique<FusedAdamW>(masters_, options);
}

void MasterWeights::set_lr(double lr) {
  for (auto& g : optimizer_->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

void MasterWeights::accumulate_grads() {
  if (!enabled_) return;
  for (size_t i = 0; i < params_.size(); ++i) accumulate_grad(i);
}

void MasterWeights::accumulate_grad(size_t i) {
  if (!enabled_) return;
  torch::NoGradGuard no_grad;
  torch::Tensor& g = params_[i].mutable_grad();
  if (!g.defined()) return;
  torch::Tensor& mg = masters_[i].mutable_grad();
  if (mg.defined()) {
    mg.add_(g.to(torch::kFloat32));
  } else {
    mg = g.to(torch::kFloat32);
  }
  g = torch::Tensor();  // the next micro-batch starts a fresh low-precision gradient
}

double MasterWeights::clip_grad_norm(double max_norm) {
  accumulate_grads();
  std::vector<torch::Tensor> with_grad;
  for (const auto& m : masters_)
    if (m.grad().defined()) with_grad.push_back(m);
  if (with_grad.empty()) return 0.0;
  return torch::nn::utils::clip_grad_norm_(with_grad, max_norm);
}

void MasterWeights::step() {
  accumulate_grads();
  optimizer_->step();
  if (enabled_) copy_masters_to_params();
}

void MasterWeights::zero_grad() {
  for (auto& p : params_) p.mutable_grad() = torch::Tensor();
  for (auto& m : masters_) m.mutable_grad() = torch::Tensor();
}

void MasterWeights::copy_masters_to_params() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) params_[i].copy_(masters_[i]);  // rounds to nearest
}

void MasterWeights::save(torch::serialize::OutputArchive& archive) const {
  optimizer_->save(archive);
  if (!enabled_) return;
  torch::serialize::OutputArchive masters;
  for (size_t i = 0; i < masters_.size(); ++i) masters.write(std::to_string(i), masters_[i].detach());
  archive.write(kMastersKey, masters);
}

void MasterWeights::load(torch::serialize::InputArchive& archive) {
  optimizer_->load(archive);
  if (!enabled_) return;
  torch::serialize::InputArchive masters;
  if (!archive.try_read(kMastersKey, masters)) {
    // Written by a run without masters: start them from the (already loaded) parameters.
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) masters_[i].copy_(params_[i]);
    return;
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < masters_.size(); ++i) {
    torch::Tensor t;
    R1_CHECK(masters.try_read(std::to_string(i), t), "master weights: tensor ", i, " of ", masters_.size(),
             " is missing (checkpoint of another model?)");
    R1_CHECK(t.sizes() == masters_[i].sizes(), "master weights: tensor ", i, " has shape ", t.sizes(),
             ", the parameter has ", masters_[i].sizes());
    masters_[i].copy_(t);
  }
  copy_masters_to_params();
}

void MasterWeights::save_to_file(const std::string& path) const {
  torch::serialize::OutputArchive archive;
  save(archive);
  std::ostringstream os;
  archive.save_to(os);
  write_file_atomic(path, os.str());
}

void MasterWeights::load_from_file(const std::string& path, torch::Device device) {
  R1_CHECK(path_exists(path), path, ": missing optimizer state");
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path, device);
    load(archive);
  } catch (const c10::Error& e) {
    R1_FAIL(path, ": cannot load optimizer state: ", e.what_without_backtrace());
  }
}

}  // namespace r1kit
