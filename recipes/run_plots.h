// The run's pictures: RUN_DIR/plots/*.svg drawn from the stages' metrics.jsonl files (SFT loss;
// GRPO reward, accuracy and completion length per step -- the R1-Zero "length grows" picture) and
// the held-out accuracy after each evaluation stage. Also the console curves of a GRPO stage.
#pragma once
#include <string>
#include <vector>

#include "core/json.h"

namespace r1kit::recipes {

// Writes every plot the run has data for; returns the files written.
std::vector<std::string> write_run_plots(const std::string& run_dir, const json& summary);

// Per-step series read from a metrics.jsonl: x = record["step"], y = record[key] (records without
// the key are skipped). Missing file -> empty.
struct MetricSeries {
  std::vector<double> step, value;
};
MetricSeries read_metric(const std::string& metrics_jsonl, const std::string& key);

}  // namespace r1kit::recipes
