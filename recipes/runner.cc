#include "recipes/runner.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "core/check.h"
#include "core/fs.h"
#include "core/logging.h"
#include "core/timer.h"
#include "model/device.h"
#include "model/process_group.h"
#include "recipes/run_plots.h"
#include "recipes/tiny_model.h"

namespace r1kit::recipes {
namespace {

namespace fs = std::filesystem;
constexpr int kDoneVersion = 1;

// Overrides "a.b=v" whose first component names a stage apply to that stage's object.
void apply_overrides(json& root, const std::vector<std::string>& overrides, const std::string& where) {
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    R1_CHECK(eq != std::string::npos && eq > 0, "override '", o, "': expected key=value");
    const auto dot = o.find('.');
    if (dot != std::string::npos && dot < eq && root.contains("stages") && root["stages"].is_array()) {
      const std::string head = o.substr(0, dot);
      bool applied = false;
      for (auto& stage : root["stages"]) {
        if (stage.is_object() && stage.value("name", "") == head) {
          apply_override(stage, o.substr(dot + 1));
          applied = true;
        }
      }
      if (applied) continue;
      R1_CHECK(root.contains(head) || head == "model" || head == "data", where, ": override '", o, "': '", head,
               "' is neither a stage name nor a top-level key");
    }
    apply_override(root, o);
  }
}

// Deep merge for `base:`: mappings merge key by key, anything else is replaced.
void merge_into(json& base, const json& over) {
  for (auto it = over.begin(); it != over.end(); ++it) {
    if (it->is_object() && base.contains(it.key()) && base[it.key()].is_object()) {
      merge_into(base[it.key()], *it);
    } else {
      base[it.key()] = *it;
    }
  }
}

// `enabled: false` drops a stage (e.g. an inherited evaluation a derived recipe does not need).
json drop_disabled(const json& stages, const std::string& path) {
  json kept = json::array();
  for (json st : stages) {
    if (st.is_object() && st.contains("enabled")) {
      R1_CHECK(st["enabled"].is_boolean(), path, ": stage '", st.value("name", std::string()),
               "': key 'enabled' must be true or false");
      const bool on = st["enabled"].get<bool>();
      st.erase("enabled");
      if (!on) continue;
    }
    kept.push_back(std::move(st));
  }
  return kept;
}

// The recipe file with its `base:` chain resolved (stages merged by name, new ones appended).
json load_with_base(const std::string& path, int depth = 0) {
  R1_CHECK(depth < 8, path, ": 'base' chain deeper than 8 (a cycle?)");
  json root = load_json_or_yaml(path);
  R1_CHECK(root.is_object(), path, ": a recipe must be a mapping with 'stages'");
  if (!root.contains("base")) return root;  // `enabled` keys stay until load_recipe (see there)
  R1_CHECK(root["base"].is_string(), path, ": key 'base' must be a recipe file name");
  const fs::path base_path = fs::path(path).parent_path() / root["base"].get<std::string>();
  R1_CHECK(fs::exists(base_path), path, ": key 'base': file not found: ", base_path.string());
  json merged = load_with_base(base_path.string(), depth + 1);
  json stages = merged.value("stages", json::array());
  const json own = root.value("stages", json::array());
  R1_CHECK(own.is_array(), path, ": key 'stages' must be a list");
  for (const auto& st : own) {
    bool found = false;
    for (auto& b : stages) {
      if (st.is_object() && b.is_object() && st.contains("name") && b.value("name", json()) == st["name"]) {
        merge_into(b, st);
        found = true;
      }
    }
    if (!found) stages.push_back(st);
  }
  root.erase("base");
  root.erase("stages");
  merge_into(merged, root);
  merged["stages"] = stages;
  if (!root.contains("name")) merged["name"] = fs::path(path).stem().string();
  return merged;
}

std::string stage_done_path(const std::string& run_dir, const std::string& name) { return run_dir + "/" + name + "/DONE"; }

// Paths inside the run directory are stored relative to it, so a moved run directory still resumes.
std::string to_stored(const std::string& path, const std::string& run_dir) {
  if (path.empty()) return path;
  const std::string rel = fs::path(path).lexically_relative(run_dir).string();
  return (!rel.empty() && rel.rfind("..", 0) != 0) ? rel : path;
}
std::string from_stored(const std::string& path, const std::string& run_dir) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return run_dir + "/" + path;
}

std::string fmt_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", s);
  return buf;
}

std::string fmt_accuracy(const json& eval) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f%% (n=%lld)", 100.0 * eval.at("accuracy").get<double>(),
                static_cast<long long>(eval.at("n").get<int64_t>()));
  return buf;
}

}  // namespace

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides) {
  json root = load_with_base(path);
  apply_overrides(root, overrides, path);
  // Disabled stages are dropped only now, after the `base:` chain and the overrides, so that a derived
  // recipe's `enabled: true` or `<stage>.enabled=true` on the command line brings back a stage a file
  // disabled, and `<stage>.enabled=false` drops one like the key in the file does.
  if (root.contains("stages") && root["stages"].is_array()) root["stages"] = drop_disabled(root["stages"], path);
  Recipe recipe;
  recipe.resolved = root;
  ConfigNode node(root, path);
  RecipeSettings& s = recipe.settings;
  s.file = path;
  s.name = fs::path(path).stem().string();
  node.read("name", s.name);
  node.ignore("description");
  node.read("seed", s.seed);
  node.read("device", s.device);
  node.read_enum("dtype", s.dtype, {"auto", "float32", "f32", "bfloat16", "bf16", "float16", "f16"});
  node.read("threads", s.threads);
  node.read("autocast", s.autocast);
  node.read("activation_checkpointing", s.activation_checkpointing);
  if (s.name.empty() || s.name.find('/') != std::string::npos) node.fail("name", "must be a non-empty name without '/'");
  try {
    parse_device(s.device, "device", /*check_available=*/false);
  } catch (const Error&) {
    node.fail("device", "'" + s.device + "' is not cpu, cuda or cuda:N");
  }
  if (s.threads < 0) node.fail("threads", "must be >= 0");
  if (s.autocast && s.dtype != "float32" && s.dtype != "f32")
    node.fail("autocast", "needs dtype: float32 (autocast computes in bf16 over float32 weights)");

  ConfigNode model = node.child("model");
  model.read("path", s.model_path);
  if (model.has("create")) {
    ConfigNode create = model.child("create");
    read_tiny_model_options(create);  // validates now; the runner re-reads the JSON when it creates the model
    s.model_create = create.raw();
  }
  model.finish();
  if (s.model_path.empty() == s.model_create.is_null())
    model.fail(s.model_path.empty() ? "path" : "create", "give exactly one of 'model.path' (an HF checkpoint) and 'model.create'");
  if (!s.model_path.empty() && !path_exists(s.model_path + "/config.json"))
    model.fail("path", "no config.json in '" + s.model_path + "'");

  ConfigNode data = node.child("data");
  s.data = read_task_options(data);

  R1_CHECK(node.has("stages") && node.raw().at("stages").is_array() && !node.raw().at("stages").empty(), path,
           ": key 'stages' must be a non-empty list");
  node.ignore("stages");
  std::set<std::string> names;
  const json& stages = node.raw().at("stages");
  for (size_t i = 0; i < stages.size(); ++i) {
    ConfigNode st(stages[i], path, "stages." + std::to_string(i));
    PlannedStage planned;
    st.require("name", planned.name);
    ConfigNode named(stages[i], path, "stages." + planned.name);  // errors name the stage, not its index
    named.ignore("name");
    named.require("kind", planned.kind);
    named.read("input", planned.input);
    if (planned.name.empty() || planned.name.find_first_of("/. ") != std::string::npos)
      named.fail("name", "'" + planned.name + "' must be non-empty without '/', '.' or spaces");
    if (planned.name == "plots" || planned.name == "base_model" || node.raw().contains(planned.name))
      named.fail("name", "'" + planned.name + "' is reserved");
    if (!names.insert(planned.name).second) named.fail("name", "duplicate stage name '" + planned.name + "'");
    if (!planned.input.empty() && !names.count(planned.input))
      named.fail("input", "'" + planned.input + "' is not an earlier stage");
    const StageKind* kind = nullptr;
    std::string known;
    for (const auto& k : stage_kinds()) {
      if (k.kind == planned.kind) kind = &k;
      known += (known.empty() ? "" : ", ") + k.kind;
    }
    if (!kind) named.fail("kind", "unknown stage kind '" + planned.kind + "' (known: " + known + ")");
    planned.stage = kind->parse(named, s);
    for (const auto& [key, ref] : planned.stage->references())
      if (!ref.empty() && !is_path_ref(ref) && (!names.count(ref) || ref == planned.name))
        named.fail(key, "'" + ref + "' is not an earlier stage (a path needs a '/' or '.')");
    recipe.stages.push_back(std::move(planned));
  }
  ConfigNode headline = node.child("headline");
  for (auto it = headline.raw().begin(); it != headline.raw().end(); ++it) {
    std::string stage;
    headline.read(it.key(), stage);
    bool is_eval = false;
    for (const auto& st : recipe.stages) is_eval = is_eval || (st.name == stage && st.kind == "eval");
    if (!is_eval) headline.fail(it.key(), "'" + stage + "' is not an eval stage of this recipe");
    recipe.headline[it.key()] = stage;
  }
  node.finish();
  return recipe;
}

// Under a data-parallel launch (docs/distributed.md) only rank 0 writes the run directory; the
// other ranks wait for its files. Only grpo and sft stages run on every rank; the rest run on rank 0.
static void wait_for_file(const std::string& path, const std::string& what) {
  spdlog::info("rank {}: waiting for rank 0's {} ({})", read_dist_env().rank, what, path);
  while (!path_exists(path)) std::this_thread::sleep_for(std::chrono::milliseconds(500));
}

json run_recipe(Recipe& recipe, const RunOptions& opts) {
  const RecipeSettings& s = recipe.settings;
  const std::string run_dir = fs::absolute(opts.run_dir.empty() ? "runs/" + s.name : opts.run_dir).lexically_normal().string();
  make_dirs(run_dir);
  Timer total;
  const bool main_rank = read_dist_env().rank == 0;

  // 1. The resolved recipe, for the record; a re-run with different settings says so.
  const std::string resolved_path = run_dir + "/recipe.json";
  if (path_exists(resolved_path)) {
    const json before = parse_json(read_file(resolved_path), resolved_path);
    if (before != recipe.resolved)
      spdlog::warn("{}: this recipe differs from the one that started the run; finished stages are kept", resolved_path);
  }
  if (main_rank) write_file_atomic(resolved_path, recipe.resolved.dump(2) + "\n");

  // 2. The starting model: a checkpoint directory, or a fresh tiny model created once per run dir.
  std::string model_dir = s.model_path;
  if (model_dir.empty()) {
    model_dir = run_dir + "/base_model";
    if (!main_rank) {
      wait_for_file(model_dir + "/config.json", "tiny model");
    } else if (!path_exists(model_dir + "/config.json")) {
      ConfigNode create(s.model_create, s.file, "model.create");
      spdlog::info("creating the tiny model in {}", model_dir);
      create_tiny_model(read_tiny_model_options(create), s.seed, model_dir);
    }
  }
  std::unique_ptr<Task> task = make_task(s.data);

  // 3. The stages, in order: finished ones are skipped, the rest run (resuming their checkpoints).
  json summary_stages = json::array();
  std::map<std::string, std::string> model_of;  // stage name -> its output model (or the model it kept)
  for (size_t i = 0; i < recipe.stages.size(); ++i) {
    PlannedStage& st = recipe.stages[i];
    StageEnv env;
    env.recipe = &s;
    env.task = task.get();
    env.name = st.name;
    env.run_dir = run_dir;
    env.stage_dir = run_dir + "/" + st.name;
    env.input_model = st.input.empty() ? model_dir : model_of.at(st.input);
    env.stage_models = &model_of;
    env.seed = s.seed * 1000003ULL + (i + 1) * 7919ULL;
    const std::string done_path = stage_done_path(run_dir, st.name);

    json done;
    const bool on_this_rank = main_rank || st.kind == "grpo" || st.kind == "sft";  // data parallel
    if (!path_exists(done_path) && !on_this_rank) wait_for_file(done_path, "stage " + st.name);
    if (path_exists(done_path)) {
      done = parse_json(read_file(done_path), done_path);
      R1_CHECK(done.value("kind", "") == st.kind, done_path, ": stage '", st.name, "' finished as kind '",
               done.value("kind", ""), "' but the recipe says '", st.kind, "'; use another --out");
      spdlog::info("stage {}/{} '{}' ({}): already done, skipping", i + 1, recipe.stages.size(), st.name, st.kind);
    } else {
      make_dirs(env.stage_dir);
      spdlog::info("stage {}/{} '{}' ({}): starting from {}", i + 1, recipe.stages.size(), st.name, st.kind,
                   env.input_model);
      Timer timer;
      StageResult result = st.stage->run(env);
      done = {{"version", kDoneVersion},
              {"kind", st.kind},
              {"seconds", timer.seconds()},
              {"model_dir", to_stored(result.model_dir, run_dir)},
              {"input_model", to_stored(env.input_model, run_dir)},
              {"info", result.info}};
      if (!result.eval.is_null()) done["eval"] = result.eval;
      if (!main_rank) {  // rank 0 writes the record of a data-parallel stage
        wait_for_file(done_path, "stage " + st.name);
        done = parse_json(read_file(done_path), done_path);
      } else {
        write_file_atomic(done_path, done.dump(2) + "\n");
      }
      spdlog::info("stage '{}' done in {:.1f} s", st.name, timer.seconds());
    }
    const std::string produced = from_stored(done.value("model_dir", ""), run_dir);
    if (!produced.empty()) model_dir = produced;
    model_of[st.name] = model_dir;
    json row = {{"name", st.name}, {"kind", st.kind}, {"seconds", done.value("seconds", 0.0)}};
    if (done.contains("eval")) row["eval"] = done["eval"];
    summary_stages.push_back(row);
  }

  // 4. Summary, plots, table.
  json summary = {{"recipe", s.name}, {"run_dir", run_dir}, {"final_model", model_dir}, {"stages", summary_stages}};
  if (!main_rank) return summary;
  if (!recipe.headline.empty()) {
    json headline = json::object();
    for (auto it = recipe.headline.begin(); it != recipe.headline.end(); ++it)
      for (const auto& row : summary_stages)
        if (row["name"] == *it && row.contains("eval"))
          headline[it.key()] = {{"stage", *it}, {"accuracy", row["eval"]["accuracy"]}, {"n", row["eval"]["n"]}};
    summary["headline"] = headline;
  }
  write_file_atomic(run_dir + "/summary.json", summary.dump(2) + "\n");
  const std::vector<std::string> plots = write_run_plots(run_dir, summary);
  if (opts.print_table) {
    std::cout << format_summary(summary);
    for (const auto& p : plots) std::cout << "plot: " << p << "\n";
    std::cout << "run directory: " << run_dir << "  (this invocation: " << fmt_seconds(total.seconds()) << " s)\n";
    std::cout.flush();
  }
  return summary;
}

std::string format_summary(const json& summary) {
  const json& stages = summary.at("stages");
  size_t wname = 5, wkind = 4;
  for (const auto& st : stages) {
    wname = std::max(wname, st.at("name").get<std::string>().size());
    wkind = std::max(wkind, st.at("kind").get<std::string>().size());
  }
  auto pad = [](std::string s, size_t w) { return s.size() < w ? s + std::string(w - s.size(), ' ') : s; };
  auto lpad = [](std::string s, size_t w) { return s.size() < w ? std::string(w - s.size(), ' ') + s : s; };
  std::string out = pad("stage", wname) + "  " + pad("kind", wkind) + "  " + lpad("seconds", 9) + "  held-out accuracy\n";
  double total = 0;
  for (const auto& st : stages) {
    total += st.at("seconds").get<double>();
    out += pad(st.at("name").get<std::string>(), wname) + "  " + pad(st.at("kind").get<std::string>(), wkind) + "  " +
           lpad(fmt_seconds(st.at("seconds").get<double>()), 9) + "  " +
           (st.contains("eval") ? fmt_accuracy(st.at("eval")) : "") + "\n";
  }
  out += pad("total", wname) + "  " + pad("", wkind) + "  " + lpad(fmt_seconds(total), 9) + "\n";

  // Before/after: the last greedy evaluation, and the last one before the training stage preceding it
  // (sampled evaluations, e.g. a k = 8 report, measure something else).
  auto greedy_eval = [&](int i) { return stages[i].contains("eval") && stages[i]["eval"].value("greedy", true); };
  int after = -1;
  for (int i = static_cast<int>(stages.size()) - 1; i >= 0 && after < 0; --i)
    if (greedy_eval(i)) after = i;
  int train = -1;
  for (int i = after - 1; i >= 0 && train < 0; --i)
    if (stages[i].at("kind") != "eval") train = i;
  int before = -1;
  for (int i = train - 1; i >= 0 && before < 0; --i)
    if (greedy_eval(i)) before = i;
  // A recipe with a named headline (distillation: teacher / student / baseline) compares those
  // instead: its last two evaluations are two models side by side, not a before and an after.
  if (after >= 0 && before >= 0 && !summary.contains("headline")) {
    const double a = stages[before]["eval"]["accuracy"].get<double>(), b = stages[after]["eval"]["accuracy"].get<double>();
    char buf[256];
    std::snprintf(buf, sizeof buf, "held-out accuracy: %.1f%% (%s) -> %.1f%% (%s), %+.1f points\n", 100 * a,
                  stages[before]["name"].get<std::string>().c_str(), 100 * b,
                  stages[after]["name"].get<std::string>().c_str(), 100 * (b - a));
    out += buf;
  }
  if (summary.contains("headline")) {
    for (auto it = summary["headline"].begin(); it != summary["headline"].end(); ++it) {
      char buf[256];
      std::snprintf(buf, sizeof buf, "%-10s %5.1f%%  (%s)\n", it.key().c_str(), 100 * (*it)["accuracy"].get<double>(),
                    (*it)["stage"].get<std::string>().c_str());
      out += buf;
    }
  }
  return out;
}

bool is_path_ref(const std::string& ref) { return ref.find_first_of("/.") != std::string::npos; }

std::string resolve_model_ref(const StageEnv& env, const std::string& key, const std::string& ref) {
  R1_CHECK(!ref.empty(), "stage '", env.name, "': key '", key, "' is empty");
  if (!is_path_ref(ref)) {
    R1_CHECK(env.stage_models && env.stage_models->count(ref), "stage '", env.name, "': key '", key, "': '", ref,
             "' is not an earlier stage");
    return env.stage_models->at(ref);
  }
  R1_CHECK(path_exists(ref + "/config.json"), "stage '", env.name, "': key '", key, "': model not found: ", ref,
           "/config.json does not exist");
  return ref;
}

std::string resolve_dataset_ref(const StageEnv& env, const std::string& key, const std::string& ref) {
  R1_CHECK(!ref.empty(), "stage '", env.name, "': key '", key, "' is empty");
  const std::string path = is_path_ref(ref) ? ref : env.run_dir + "/" + ref + "/data.jsonl";
  R1_CHECK(path_exists(path), "stage '", env.name, "': key '", key, "': dataset not found: ", path,
           is_path_ref(ref) ? "" : " (stage '" + ref + "' writes no data.jsonl)");
  return path;
}

}  // namespace r1kit::recipes
