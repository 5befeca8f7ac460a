#include "eval/metrics.h"

#include <cmath>
#include <algorithm>
#include <map>

#include "core/check.h"

namespace r1kit::eval {

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  R1_CHECK(n >= 1 && c >= 0 && c <= n, "pass_at_k: need 0 <= c <= n and n >= 1 (n = ", n, ", c = ", c, ")");
  R1_CHECK(k >= 1 && k <= n, "pass_at_k: need 1 <= k <= n (n = ", n, ", k = ", k, ")");
  // Every k-subset contains a correct sample when fewer than k are wrong.
  if (n - c < k) return 1.0;
  // C(n-c, k) / C(n, k) = prod_{i = n-c+1}^{n} (1 - k / i): stable, no factorials.
  double fail = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i) fail *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - fail;
}

std::vector<int64_t> power_of_two_ks(int64_t n) {
  std::vector<int64_t> ks;
  for (int64_t k = 1; k <= n; k *= 2) ks.push_back(k);
  return ks;
}

std::vector<int> answer_classes(const std::vector<std::optional<std::string>>& answers, const AnswerEquiv& equiv) {
  std::vector<int> classes(answers.size(), -1);
  std::vector<const std::string*> first_member;  // class -> its first answer
  std::map<std::string, int> exact;               // identical strings skip the checker
  for (size_t i = 0; i < answers.size(); ++i) {
    if (!answers[i]) continue;
    const std::string& a = *answers[i];
    if (auto it = exact.find(a); it != exact.end()) {
      classes[i] = it->second;
      continue;
    }
    int cls = -1;
    for (size_t c = 0; c < first_member.size() && cls < 0; ++c)
      if (equiv(*first_member[c], a)) cls = static_cast<int>(c);
    if (cls < 0) {
      cls = static_cast<int>(first_member.size());
      first_member.push_back(&a);
    }
    classes[i] = cls;
    exact.emplace(a, cls);
  }
  return classes;
}

MajorityVote majority_vote(const std::vector<int>& classes, int64_t k) {
  R1_CHECK(k >= 0 && k <= static_cast<int64_t>(classes.size()), "majority_vote: k = ", k, " > ", classes.size(), " samples");
  std::map<int, std::pair<int64_t, int64_t>> tally;  // class -> (votes, first sample)
  for (int64_t i = 0; i < k; ++i) {
    if (classes[i] < 0) continue;
    auto [it, fresh] = tally.emplace(classes[i], std::make_pair(int64_t{0}, i));
    ++it->second.first;
  }
  MajorityVote best;
  for (const auto& [cls, vf] : tally) {
    const bool better = vf.first > best.votes || (vf.first == best.votes && vf.second < best.first);
    if (best.cls < 0 || better) best = {cls, vf.first, vf.second};
  }
  return best;
}

ProblemMetrics problem_metrics(const ProblemSamples& p) {
  ProblemMetrics m;
  m.id = p.id;
  m.n = static_cast<int64_t>(p.correct.size());
  for (bool v : p.correct) m.c += v;
  m.greedy = p.greedy;
  if (m.n == 0) return m;
  R1_CHECK(p.classes.empty() || p.classes.size() == p.correct.size(), "problem '", p.id, "': ", p.classes.size(),
           " answer classes for ", p.correct.size(), " samples");
  for (int64_t k : power_of_two_ks(m.n)) {
    m.pass_at.emplace_back(k, pass_at_k(m.n, m.c, k));
    if (p.classes.empty()) continue;
    const MajorityVote v = majority_vote(p.classes, k);
    m.maj_at.emplace_back(k, v.cls >= 0 && p.correct[v.first] ? 1.0 : 0.0);
    m.maj_answer_sample.push_back(v.first);
  }
  return m;
}

json ProblemMetrics::to_json() const {
  json j = {{"problem_id", id}, {"n", n}, {"correct", c}};
  for (const auto& [k, v] : pass_at) j["pass@" + std::to_string(k)] = v;
  for (const auto& [k, v] : maj_at) j["maj@" + std::to_string(k)] = v;
  if (greedy) j["greedy"] = *greedy;
  return j;
}

Summary summarize(const std::vector<ProblemMetrics>& problems) {
  // name -> values over problems; `order` keeps pass@1, pass@2, ..., maj@1, ..., greedy.
  std::map<std::string, std::vector<double>> values;
  std::vector<std::string> pass_names, maj_names;
  auto add = [&](std::vector<std::string>& order, const std::string& name, double v) {
    auto& vs = values[name];
    if (vs.empty()) {
      order.push_back(name);
    }
    vs.push_back(v);
  };
  Summary s;
  std::vector<std::string> greedy_name;
  for (const auto& p : problems) {
    ++s.problems;
    s.samples += p.n;
    for (const auto& [k, v] : p.pass_at) add(pass_names, "pass@" + std::to_string(k), v);
    for (const auto& [k, v] : p.maj_at) add(maj_names, "maj@" + std::to_string(k), v);
    if (p.greedy) add(greedy_name, "greedy", *p.greedy ? 1.0 : 0.0);
  }
  auto by_k = [](const std::string& a, const std::string& b) {
    return std::stoll(a.substr(a.find('@') + 1)) < std::stoll(b.substr(b.find('@') + 1));
  };
  std::sort(pass_names.begin(), pass_names.end(), by_k);
  std::sort(maj_names.begin(), maj_names.end(), by_k);
  for (const auto* names : {&pass_names, &maj_names, &greedy_name}) {
    for (const auto& name : *names) {
      const auto& vs = values[name];
      MetricValue mv;
      mv.problems = static_cast<int64_t>(vs.size());
      double sum = 0;
      for (double v : vs) sum += v;
      mv.mean = sum / vs.size();
      if (vs.size() > 1) {
        double ss = 0;
        for (double v : vs) ss += (v - mv.mean) * (v - mv.mean);
        mv.se = std::sqrt(ss / (vs.size() - 1)) / std::sqrt(static_cast<double>(vs.size()));
      }
      s.metrics.emplace_back(name, mv);
    }
  }
  return s;
}

const MetricValue* Summary::find(const std::string& name) const {
  for (const auto& [n, v] : metrics)
    if (n == name) return &v;
  return nullptr;
}

json Summary::to_json() const {
  json j = {{"problems", problems}, {"samples", samples}};
  json m = json::object();
  for (const auto& [name, v] : metrics) m[name] = {{"mean", v.mean}, {"stderr", v.se}, {"problems", v.problems}};
  j["metrics"] = m;
  return j;
}

}  // namespace r1kit::eval
