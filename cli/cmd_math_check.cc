// r1kit math-check: checks math answers against gold answers.
//   r1kit math-check --in pairs.jsonl [--out checked.jsonl] [--explain]
//       each line {"gold": ..., "pred": ...} is written back with "correct": true|false
//   r1kit math-check --gold '\frac12' --pred '0.5'      prints one JSON object
//   --timing adds the per-check figures (sum, median, p99 of the time spent in math_verify) to the
//   summary on stderr, so a whole-command timing can be set against the checking itself.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <vector>

#include "cli/command.h"
#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/timer.h"
#include "rewards/math_verify.h"

namespace r1kit::cli {
namespace {

struct MathCheckArgs {
  std::string in, out, gold, pred;
  bool explain = false;
  bool no_extract = false;
  int float_rounding = rewards::MathVerifyOptions{}.float_rounding;
  bool lenient_vars = false;
  bool set_relation = false;
  std::vector<std::string> match{"latex", "expr"};
  bool phrase_first = false;
  bool timing = false;
};

std::string text_of(const json& v, const char* field) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return rewards::gold_from_field(v);
  R1_FAIL("field '", field, "': expected a string or a number, got ", v.dump());
}

json check_one(const std::string& gold, const std::string& pred, const rewards::MathVerifyOptions& o, bool explain,
               json rec, std::vector<double>* micros = nullptr) {
  Timer t;
  rewards::MathVerifyResult r = rewards::math_verify(gold, pred, o);
  if (micros) micros->push_back(t.micros());
  rec["correct"] = r.correct;
  if (explain) {
    rec["explain"] = {{"gold_extracted", r.gold_extracted}, {"pred_extracted", r.pred_extracted},
                      {"gold_parsed", r.gold_parsed},       {"pred_parsed", r.pred_parsed},
                      {"exact", r.exact},                   {"reason", r.reason}};
  }
  return rec;
}

int run(const MathCheckArgs& a) {
  rewards::MathVerifyOptions o;
  o.float_rounding = a.float_rounding;
  o.strict = !a.lenient_vars;
  o.allow_set_relation = a.set_relation;
  o.extract_gold = o.extract_pred = !a.no_extract;
  o.match_latex = o.match_expr = false;
  for (const std::string& m : a.match) {
    R1_CHECK(m == "latex" || m == "expr", "--match: expected latex, expr or latex,expr, got '", m, "'");
    (m == "latex" ? o.match_latex : o.match_expr) = true;
  }
  o.boxed_first = !a.phrase_first;
  bool pair = !a.gold.empty() || !a.pred.empty();
  R1_CHECK(pair != !a.in.empty(), "give either --in FILE or --gold X --pred Y");
  if (pair) {
    R1_CHECK(!a.gold.empty() && !a.pred.empty(), "--gold and --pred go together");
    json rec = {{"gold", a.gold}, {"pred", a.pred}};
    std::string line = dump_line(check_one(a.gold, a.pred, o, a.explain, rec)) + "\n";
    if (a.out.empty()) std::cout << line;
    else write_file_atomic(a.out, line);
    return 0;
  }
  std::string result;
  int n = 0, correct = 0;
  std::vector<double> micros;
  for_each_jsonl(a.in, [&](const json& rec, int) {
    R1_CHECK(rec.is_object(), "expected an object {\"gold\": ..., \"pred\": ...}");
    R1_CHECK(rec.contains("gold"), "missing field 'gold'");
    R1_CHECK(rec.contains("pred"), "missing field 'pred'");
    json checked = check_one(text_of(rec.at("gold"), "gold"), text_of(rec.at("pred"), "pred"), o, a.explain, rec,
                             a.timing ? &micros : nullptr);
    ++n;
    if (checked["correct"].get<bool>()) ++correct;
    result += dump_line(checked) + "\n";
  });
  if (a.out.empty()) std::cout << result;
  else write_file_atomic(a.out, result);
  std::cerr << "math-check: " << correct << "/" << n << " correct\n";
  if (a.timing && !micros.empty()) {
    double sum = 0;
    for (double us : micros) sum += us;
    std::sort(micros.begin(), micros.end());
    auto at = [&](double q) { return micros[static_cast<size_t>(q * static_cast<double>(micros.size() - 1) + 0.5)]; };
    std::fprintf(stderr, "math-check: timing: %d checks, sum %.3f ms, median %.1f us, p99 %.1f us\n", n, sum / 1000,
                 at(0.5), at(0.99));
  }
  return 0;
}

Registrar reg{"math-check", "check math answers (gold vs pred) for equivalence", [](CLI::App& sub) {
                auto a = std::make_shared<MathCheckArgs>();
                sub.add_option("--in", a->in, "JSONL file with {\"gold\", \"pred\"} per line");
                sub.add_option("--out", a->out, "write the checked lines here (default stdout)");
                sub.add_option("--gold", a->gold, "one gold answer (with --pred)");
                sub.add_option("--pred", a->pred, "one predicted answer or completion (with --gold)");
                sub.add_flag("--explain", a->explain, "add the extracted and parsed forms and the reason");
                sub.add_flag("--no-extract", a->no_extract, "take gold and pred as answers, no extraction");
                sub.add_option("--float-rounding", a->float_rounding, "places or significant digits a decimal must carry to match an exact value (4)");
                sub.add_flag("--lenient-vars", a->lenient_vars, "f(x) matches f(y): rename a single free variable");
                sub.add_flag("--set-relation", a->set_relation, "accept a relation pred for an interval gold");
                sub.add_option("--match", a->match, "what extraction looks for: latex,expr (default), latex or expr")
                    ->delimiter(',');
                sub.add_flag("--phrase-first", a->phrase_first,
                             "rank 'final answer is X' above \\boxed{} (Math-Verify's default priority)");
                sub.add_flag("--timing", a->timing, "report the time spent checking (sum, median, p99) on stderr");
                return [a]() { return run(*a); };
              }};

}  // namespace
}  // namespace r1kit::cli
