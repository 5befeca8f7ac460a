#include "eval/report.h"

#include <algorithm>
#include <cstdio>

#include "core/check.h"
#include "core/fs.h"

namespace r1kit::eval {

json BenchmarkResult::to_json() const {
  json j = summary.to_json();
  j["benchmark"] = benchmark;
  j["settings"] = settings;
  j["mean_tokens"] = mean_tokens;
  return j;
}

BenchmarkResult BenchmarkResult::from_json(const json& j, const std::string& where) {
  try {
    BenchmarkResult r;
    r.benchmark = j.at("benchmark").get<std::string>();
    r.settings = j.at("settings");
    r.mean_tokens = j.at("mean_tokens").get<double>();
    r.summary.problems = j.at("problems").get<int64_t>();
    r.summary.samples = j.at("samples").get<int64_t>();
    for (const auto& [name, v] : j.at("metrics").items()) {
      MetricValue m{v.at("mean").get<double>(), v.at("stderr").get<double>(), v.at("problems").get<int64_t>()};
      r.summary.metrics.emplace_back(name, m);
    }
    // JSON objects are sorted by name: restore the report order (pass@k, maj@k by k, then greedy).
    auto rank = [](const std::string& n) {
      const size_t at = n.find('@');
      const int family = n.compare(0, at, "pass") == 0 ? 0 : n.compare(0, at, "maj") == 0 ? 1 : 2;
      return std::make_pair(family, at == std::string::npos ? 0LL : std::stoll(n.substr(at + 1)));
    };
    std::stable_sort(r.summary.metrics.begin(), r.summary.metrics.end(),
                     [&](const auto& a, const auto& b) { return rank(a.first) < rank(b.first); });
    return r;
  } catch (const json::exception& e) {
    R1_FAIL(where, ": not an evaluation summary: ", e.what());
  }
}

BenchmarkResult write_benchmark_outputs(const std::string& dir, const std::string& benchmark, const json& settings,
                                        const std::vector<Sample>& samples, const std::vector<ProblemResult>& problems) {
  make_dirs(dir);
  std::string lines;
  double tokens = 0;
  int64_t with_tokens = 0;
  for (const auto& s : samples) {
    lines += dump_line(s.to_json()) + "\n";
    if (s.tokens >= 0 && !s.greedy) tokens += s.tokens, ++with_tokens;
  }
  write_file_atomic(dir + "/samples.jsonl", lines);
  lines.clear();
  std::vector<ProblemMetrics> metrics;
  for (const auto& p : problems) {
    json j = p.metrics.to_json();
    if (!p.metrics.maj_at.empty()) j["maj_answer"] = p.maj_answer ? json(*p.maj_answer) : json(nullptr);
    lines += dump_line(j) + "\n";
    metrics.push_back(p.metrics);
  }
  write_file_atomic(dir + "/problems.jsonl", lines);
  BenchmarkResult r;
  r.benchmark = benchmark;
  r.settings = settings;
  r.summary = summarize(metrics);
  r.mean_tokens = with_tokens ? tokens / with_tokens : 0.0;
  write_file_atomic(dir + "/summary.json", r.to_json().dump(2) + "\n");
  return r;
}

std::string report_markdown(const std::vector<BenchmarkResult>& results) {
  std::string md = "# Evaluation report\n";
  char buf[256];
  for (const auto& r : results) {
    md += "\n## " + r.benchmark + "\n\n";
    std::string settings;
    for (const auto& [k, v] : r.settings.items()) settings += (settings.empty() ? "" : ", ") + k + " " + (v.is_string() ? v.get<std::string>() : v.dump());
    std::snprintf(buf, sizeof buf, "%lld problems, %lld samples", static_cast<long long>(r.summary.problems),
                  static_cast<long long>(r.summary.samples));
    md += buf;
    // Lengths are known for generated samples (and scored files that carry "tokens").
    std::snprintf(buf, sizeof buf, ", mean response %.1f tokens", r.mean_tokens);
    md += (r.mean_tokens > 0 ? std::string(buf) : std::string()) + ".\n";
    if (!settings.empty()) md += "Settings: " + settings + ".\n";
    md += "\n| metric | value (%) | std. error (%) | problems |\n|---|---:|---:|---:|\n";
    for (const auto& [name, v] : r.summary.metrics) {
      std::snprintf(buf, sizeof buf, "| %s | %.2f | %.2f | %lld |\n", name.c_str(), 100 * v.mean, 100 * v.se,
                    static_cast<long long>(v.problems));
      md += buf;
    }
  }
  return md;
}

}  // namespace r1kit::eval
