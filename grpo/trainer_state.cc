#include "grpo/trainer_state.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>

#include "core/check.h"
#include "core/fs.h"

namespace r1kit::grpo {

namespace fs = std::filesystem;

namespace {
constexpr const char* kFormat = "r1kit-grpo-state";
constexpr int kVersion = 1;
}  // namespace

json TrainerState::to_json() const {
  return {{"format", kFormat},         {"version", kVersion},     {"step", step},
          {"optimizer_steps", optimizer_steps}, {"data_position", data_position}, {"seed", seed}};
}

TrainerState TrainerState::from_json(const json& j, const std::string& where) {
  R1_CHECK(j.is_object() && j.value("format", "") == kFormat, where, ": not a GRPO trainer state (format '",
           kFormat, "' expected)");
  R1_CHECK(j.value("version", 0) == kVersion, where, ": unsupported trainer state version ", j.value("version", 0));
  TrainerState s;
  try {
    s.step = j.at("step").get<int64_t>();
    s.optimizer_steps = j.at("optimizer_steps").get<int64_t>();
    s.data_position = j.at("data_position").get<int64_t>();
    s.seed = j.at("seed").get<uint64_t>();
  } catch (const json::exception& e) {
    R1_FAIL(where, ": bad trainer state: ", e.what());
  }
  return s;
}

std::string checkpoint_dir(const std::string& run_dir, int64_t step) {
  return run_dir + "/checkpoints/step-" + std::to_string(step);
}

std::vector<int64_t> checkpoint_steps(const std::string& run_dir) {
  std::vector<int64_t> steps;
  const fs::path root = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return steps;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step-", 0) != 0) continue;
    const std::string digits = name.substr(5);
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;  // *.tmp, *.old
    if (!fs::exists(entry.path() / "trainer_state.json")) continue;
    steps.push_back(std::stoll(digits));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

void save_checkpoint(const std::string& run_dir, const TrainerState& state, Transformer& policy,
                     const ModelConfig& cfg, const MasterWeights& optimizer, const std::string& tokenizer_dir,
                     int64_t keep, const LoraAdapter* adapter) {
  const std::string final_dir = checkpoint_dir(run_dir, state.step);
  const std::string tmp = final_dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  make_dirs(tmp);
  if (adapter != nullptr && *adapter) {
    save_peft_adapter(*adapter, tmp + "/adapter", tokenizer_dir);
  } else {
    SaveOptions save;
    save.tokenizer_dir = tokenizer_dir;
    save_model(policy, cfg, tmp + "/model", save);
  }
  optimizer.save_to_file(tmp + "/optimizer.pt");
  write_file_atomic(tmp + "/trainer_state.json", state.to_json().dump(1) + "\n");
  replace_directory(tmp, final_dir);

  std::vector<int64_t> steps = checkpoint_steps(run_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < steps.size(); ++i) {
    fs::remove_all(checkpoint_dir(run_dir, steps[i]), ec);
  }
  // Half-written checkpoints of a killed run (step-N.tmp, step-N.old) are never loaded: drop them.
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(fs::path(run_dir) / "checkpoints", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step-", 0) == 0 && name.find('.') != std::string::npos) stale.push_back(entry.path());
  }
  for (const fs::path& p : stale) fs::remove_all(p, ec);
}

TrainerState load_checkpoint_state(const std::string& run_dir, int64_t step, MasterWeights& optimizer,
                                   torch::Device device) {
  const std::string dir = checkpoint_dir(run_dir, step);
  const std::string state_path = dir + "/trainer_state.json";
  TrainerState state = TrainerState::from_json(parse_json(read_file(state_path), state_path), state_path);
  R1_CHECK(state.step == step, state_path, ": holds step ", state.step, " but the directory says ", step);
  optimizer.load_from_file(dir + "/optimizer.pt", device);
  return state;
}

void truncate_jsonl_after_step(const std::string& path, int64_t max_step) {
  if (!path_exists(path)) return;
  std::istringstream in(read_file(path));
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json rec = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (rec.is_discarded() || !rec.is_object()) continue;  // torn tail of a killed run
    if (rec.contains("step") && rec["step"].is_number_integer() && rec["step"].get<int64_t>() > max_step) continue;
    kept += line;
    kept += '\n';
  }
  write_file_atomic(path, kept);
}

}  // namespace r1kit::grpo
