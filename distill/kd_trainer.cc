#include "distill/kd_trainer.h"

#include <torch/torch.h>

#include "core/check.h"
#include "core/fs.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"

namespace r1kit::distill {

int64_t check_same_tokenizer(const std::string& student_dir, const std::string& teacher_dir, const std::string& where) {
  const std::string s_path = student_dir + "/tokenizer.json", t_path = teacher_dir + "/tokenizer.json";
  R1_CHECK(path_exists(s_path), where, ": student tokenizer not found: ", s_path);
  R1_CHECK(path_exists(t_path), where, ": teacher tokenizer not found: ", t_path);
  const std::string s_text = read_file(s_path), t_text = read_file(t_path);
  const Tokenizer s = Tokenizer::from_json_text(s_text, s_path);
  if (s_text == t_text) return s.vocab_size();
  const Tokenizer t = Tokenizer::from_json_text(t_text, t_path);
  R1_CHECK(s.vocab_size() == t.vocab_size(), where, ": tokenizer mismatch, logit distillation needs one vocabulary: ",
           s_path, " has ", s.vocab_size(), " tokens, ", t_path, " has ", t.vocab_size());
  for (int32_t id = 0; id < s.vocab_size(); ++id) {
    const std::string a = s.id_to_token(id), b = t.id_to_token(id);
    R1_CHECK(a == b, where, ": tokenizer mismatch, logit distillation needs one vocabulary: id ", id, " is '", a,
             "' in ", s_path, " but '", b, "' in ", t_path);
  }
  return s.vocab_size();
}

Transformer load_teacher(const std::string& dir, torch::Device device, torch::Dtype dtype) {
  R1_CHECK(!dir.empty(), "no teacher model given");
  R1_CHECK(path_exists(dir), "teacher model not found: ", dir);
  R1_CHECK(path_exists(dir + "/config.json"), "teacher model not found: ", dir, "/config.json does not exist");
  Transformer t = load_model(dir, nullptr, device, dtype);
  t->eval();
  for (auto& p : t->parameters()) p.set_requires_grad(false);
  return t;
}

double kd_loss_backward(Transformer& student, Transformer& teacher, const sft::SftBatch& batch, double normalizer,
                        const KdTrainOptions& o, int64_t vocab) {
  const torch::Device device = student->device();
  const torch::Tensor targets = batch.targets.reshape({-1}).to(device);
  const torch::Tensor selected = targets.ne(-100).nonzero().squeeze(1);
  if (selected.numel() == 0) return 0.0;
  const int64_t V = vocab > 0 ? vocab : std::min(student->config().vocab_size, teacher->config().vocab_size);
  // 1. Teacher hidden states at the target positions, without gradients.
  torch::Tensor t_hidden;
  {
    torch::NoGradGuard no_grad;
    // packed rows: the packed forward
    t_hidden = sft::sft_forward_hidden(teacher, batch, selected.to(teacher->device()));
  }
  // 2. Student hidden states; the chunks below backpropagate into a detached copy (as SFT does),
  //    so only one chunk of [n, V] logits per model is alive at a time.
  const torch::Tensor h = sft::sft_forward_hidden(student, batch, selected);  // [n, C]
  const torch::Tensor h_leaf = h.detach().requires_grad_(true);
  const torch::Tensor tgt = targets.index_select(0, selected);
  double total = 0;
  const int64_t chunk = std::max<int64_t>(1, o.loss_chunk);
  for (int64_t a = 0; a < h_leaf.size(0); a += chunk) {
    const int64_t b = std::min(h_leaf.size(0), a + chunk);
    const torch::Tensor s_logits = student->logits_from_hidden(h_leaf.slice(0, a, b)).slice(1, 0, V);
    torch::Tensor t_logits;
    {
      torch::NoGradGuard no_grad;
      t_logits = teacher->logits_from_hidden(t_hidden.slice(0, a, b)).slice(1, 0, V).to(device);
    }
    // 3. The objective of the chunk, summed over its positions.
    torch::Tensor loss = o.kd_weight * kd_divergence(s_logits, t_logits, o.kd).sum();
    if (o.ce_weight > 0)
      loss = loss + o.ce_weight * torch::nn::functional::cross_entropy(
                                      s_logits, tgt.slice(0, a, b),
                                      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    total += loss.item<double>();
    (loss / normalizer).backward();
  }
  h.backward(h_leaf.grad());
  return total;
}

sft::SftLossFn make_kd_loss(Transformer teacher, KdTrainOptions options, int64_t vocab) {
  validate_kd_options(options.kd);
  R1_CHECK(options.kd_weight >= 0 && options.ce_weight >= 0 && options.kd_weight + options.ce_weight > 0,
           "kd: kd_weight and ce_weight must be >= 0, not both 0");
  return [teacher, options, vocab](Transformer& student, const sft::SftBatch& batch, double normalizer) mutable {
    return kd_loss_backward(student, teacher, batch, normalizer, options, vocab);
  };
}

}  // namespace r1kit::distill
