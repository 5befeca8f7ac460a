#include "recipes/run_plots.h"

#include <cmath>

#include "core/fs.h"
#include "core/logging.h"
#include "recipes/grpo_metrics.h"
#include "recipes/plot.h"

namespace r1kit::recipes {

MetricSeries read_metric(const std::string& metrics_jsonl, const std::string& key) {
  MetricSeries s;
  if (!path_exists(metrics_jsonl)) return s;
  for_each_jsonl(metrics_jsonl, [&](const json& rec, int) {
    if (!rec.contains("step") || !rec.contains(key) || !rec.at(key).is_number()) return;
    s.step.push_back(rec.at("step").get<double>());
    s.value.push_back(rec.at(key).get<double>());
  });
  return s;
}

std::vector<std::string> write_run_plots(const std::string& run_dir, const json& summary) {
  struct Spec {
    const char* kind;   // stage kind whose metrics.jsonl is read
    const char* file;   // plots/<file>_<stage>.svg
    const char* title;
    const char* y_label;
    std::vector<std::pair<const char*, const char*>> series;  // (metric key, legend)
    bool y_from_zero;
  };
  const std::vector<Spec> specs = {
      {"sft", "loss", "SFT loss", "cross-entropy", {{"loss", "train loss"}}, true},
      {"grpo", "reward", "GRPO reward per step", "mean reward",
       {{kGrpoRewardKey, "total reward"}, {kGrpoAccuracyKey, "accuracy reward"}}, true},
      {"grpo", "accuracy", "GRPO training accuracy per step", "accuracy", {{kGrpoAccuracyKey, "accuracy reward"}}, true},
      {"grpo", "completion_length", "GRPO completion length per step", "tokens",
       {{kGrpoLengthKey, "mean completion length"}}, true},
      {"grpo", "heldout_accuracy", "Held-out greedy accuracy during GRPO", "accuracy",
       {{kGrpoEvalAccuracyKey, "held-out greedy accuracy"}, {"eval/borrow/correct", "held-out borrows done right"}},
       true},
      {"grpo", "borrow", "Borrow steps in the sampled completions (tiny task)", "fraction of borrow steps",
       {{"borrow/correct", "correct (x-d mod 10)"}, {"borrow/bug", "teacher's bug (d-x)"}, {"borrow/other", "other"}},
       true},
  };
  std::vector<std::string> written;
  const std::string dir = run_dir + "/plots";
  for (const auto& stage : summary.at("stages")) {
    const std::string name = stage.at("name"), kind = stage.at("kind");
    for (const auto& spec : specs) {
      if (kind != spec.kind) continue;
      std::vector<PlotSeries> series;
      bool any = false;
      for (const auto& [key, legend] : spec.series) {
        const MetricSeries m = read_metric(run_dir + "/" + name + "/metrics.jsonl", key);
        any = any || !m.step.empty();
        series.push_back({legend, m.step, m.value});
      }
      if (!any) continue;
      make_dirs(dir);
      PlotOptions o;
      o.title = std::string(spec.title) + " (" + name + ")";
      o.y_label = spec.y_label;
      o.y_from_zero = spec.y_from_zero;
      const std::string path = dir + "/" + spec.file + "_" + name + ".svg";
      write_line_chart(path, series, o);
      written.push_back(path);
    }
  }
  // Held-out accuracy after each evaluation stage, in stage order.
  PlotSeries acc{"held-out accuracy", {}, {}};
  std::string stages_axis;
  int i = 0;
  for (const auto& stage : summary.at("stages")) {
    ++i;
    if (!stage.contains("eval")) continue;
    acc.x.push_back(i);
    acc.y.push_back(stage["eval"]["accuracy"].get<double>());
    stages_axis += (stages_axis.empty() ? "" : ", ") + std::to_string(i) + "=" + stage["name"].get<std::string>();
  }
  if (!acc.x.empty()) {
    make_dirs(dir);
    PlotOptions o;
    o.title = "Held-out accuracy after each stage";
    o.x_label = "stage (" + stages_axis + ")";
    o.y_label = "accuracy";
    o.y_from_zero = true;
    const std::string path = dir + "/heldout_accuracy.svg";
    write_line_chart(path, {acc}, o);
    written.push_back(path);
  }
  return written;
}

}  // namespace r1kit::recipes
