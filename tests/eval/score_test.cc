// `eval score` input errors name the file and line; scoring fills verdicts and extracted answers;
// outputs (samples/problems/summary/report/plots) are written.
#include "eval/score.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/check.h"
#include "core/fs.h"
#include "recipes/eval_benchmark.h"

using namespace r1kit;
using namespace r1kit::eval;
namespace fs = std::filesystem;

namespace {

std::string write_tmp(const std::string& name, const std::string& text) {
  const std::string dir = testing::TempDir() + "/eval_score_test";
  fs::create_directories(dir);
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::string& text, const BenchmarkSpec& spec, const std::vector<Problem>* problems = nullptr) {
  const std::string path = write_tmp("bad.jsonl", text);
  try {
    read_samples(path, spec, problems);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

BenchmarkSpec math_spec() {
  BenchmarkSpec s;
  s.name = "synthetic";
  return s;
}

}  // namespace

TEST(EvalScore, ErrorsNameTheLine) {
  const std::string ok = R"({"problem_id": "p1", "completion": "\\boxed{1}", "answer": "1"})";
  std::string e = error_of(ok + "\n" + R"({"problem_id": "p1", "answer": "1"})" + "\n", math_spec());
  EXPECT_NE(e.find("bad.jsonl:2"), std::string::npos) << e;
  EXPECT_NE(e.find("completion"), std::string::npos) << e;
  e = error_of(ok + "\n" + ok + "\n" + R"({"completion": "x", "answer": "1"})" + "\n", math_spec());
  EXPECT_NE(e.find("bad.jsonl:3"), std::string::npos) << e;
  EXPECT_NE(e.find("problem_id"), std::string::npos) << e;
  e = error_of(R"({"problem_id": "p1", "completion": "\\boxed{1}"})" "\n", math_spec());
  EXPECT_NE(e.find("bad.jsonl:1"), std::string::npos) << e;
  EXPECT_NE(e.find("gold answer field 'answer'"), std::string::npos) << e;
  e = error_of(ok + "\n{not json\n", math_spec());
  EXPECT_NE(e.find("bad.jsonl:2"), std::string::npos) << e;
  // Duplicate sample index of one problem.
  e = error_of(R"({"problem_id": "p", "sample": 0, "completion": "a", "answer": "1"})" "\n"
               R"({"problem_id": "p", "sample": 0, "completion": "b", "answer": "1"})" "\n", math_spec());
  EXPECT_NE(e.find("bad.jsonl:2"), std::string::npos) << e;
  EXPECT_NE(e.find("duplicate sample 0"), std::string::npos) << e;
  // Code without tests.
  BenchmarkSpec code = math_spec();
  code.checker = Checker::kCode;
  e = error_of(R"({"problem_id": "p", "completion": "def f(): pass"})" "\n", code);
  EXPECT_NE(e.find("bad.jsonl:1"), std::string::npos) << e;
  EXPECT_NE(e.find("missing tests"), std::string::npos) << e;
  std::printf("example error: %s\n", e.c_str());
}

TEST(EvalScore, UnknownProblemIdOfABenchmarkNamesTheLine) {
  const std::string data = write_tmp("bench.jsonl", R"({"qid": "q1", "question": "1+1?", "final": "2"})" "\n");
  const BenchmarkSpec spec = custom_benchmark(data, "id=qid,prompt=question,answer=final", Checker::kMath);
  const std::vector<Problem> problems = load_problems(spec, "");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].prompt, "1+1?");  // a custom file's prompt as written
  if (path_exists(default_data_dir() + "/aime2024/test.jsonl")) {  // ../shared present: the R1 instruction
    EXPECT_NE(load_problems(find_benchmark("aime2024"), default_data_dir(), 1)[0].prompt.find(
                "\nPlease reason step by step, and put your final answer within \\boxed{}."),
            std::string::npos);
  }
  const std::string e = error_of(R"({"problem_id": "q1", "completion": "\\boxed{2}"})" "\n"
                                 R"({"problem_id": "q9", "completion": "\\boxed{2}"})" "\n", spec, &problems);
  EXPECT_NE(e.find("bad.jsonl:2"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown problem_id 'q9'"), std::string::npos) << e;
  // Mapping and benchmark errors.
  EXPECT_THROW(custom_benchmark(data, "id=qid,question", Checker::kMath), Error);
  EXPECT_THROW(custom_benchmark(data, "prompt=question", Checker::kMath), Error);  // math needs answer=
  EXPECT_THROW(find_benchmark("aime2025"), Error);
  EXPECT_EQ(find_benchmark("MATH-500").name, "math500");
  EXPECT_EQ(find_preset("r1", find_benchmark("aime2024")).k, 64);
  EXPECT_EQ(find_preset("greedy", find_benchmark("gsm8k")).temperature, 0.0);
}

TEST(EvalScore, ScoresAndWritesEveryOutput) {
  // Two problems x 4 samples: "0.5" and "\frac12" vote together against "3".
  std::string text;
  const char* p1[] = {"3", "0.5", "\\\\frac12", "3"};  // JSON-escaped backslashes; gold 1/2: c = 2, classes {3: 2, 1/2: 2} tie, 3 first -> maj@4 wrong
  const char* p2[] = {"7", "7.0", "\\\\frac{14}{2}", "1"};  // gold 7: c = 3, maj right
  for (int i = 0; i < 4; ++i) {
    text += std::string(R"({"problem_id": "a", "completion": "so \\boxed{)") + p1[i] + R"(}", "answer": "1/2", "tokens": )" +
            std::to_string(10 * (i + 1)) + "}\n";
    text += std::string(R"({"problem_id": "b", "completion": "so \\boxed{)") + p2[i] + R"(}", "answer": "7"})" "\n";
  }
  const std::string path = write_tmp("samples.jsonl", text);
  const BenchmarkSpec spec = math_spec();
  std::vector<eval::Sample> samples = read_samples(path, spec, nullptr);
  ASSERT_EQ(samples.size(), 8u);
  const std::string out = testing::TempDir() + "/eval_score_test/out";
  fs::remove_all(out);
  const BenchmarkResult r = recipes::score_and_write(samples, spec, json{{"source", "test"}}, out + "/synthetic");
  EXPECT_DOUBLE_EQ(r.summary.find("pass@1")->mean, (2.0 / 4 + 3.0 / 4) / 2);
  EXPECT_DOUBLE_EQ(r.summary.find("maj@4")->mean, 0.5);
  EXPECT_DOUBLE_EQ(r.summary.find("pass@4")->mean, 1.0);
  EXPECT_DOUBLE_EQ(r.mean_tokens, 25.0);  // only problem a's samples carry a length
  for (const char* f : {"/synthetic/samples.jsonl", "/synthetic/problems.jsonl", "/synthetic/summary.json",
                        "/synthetic/plots/pass_at_k.svg", "/synthetic/plots/response_length.svg"})
    EXPECT_TRUE(fs::exists(out + f)) << f;
  const std::string md = recipes::write_eval_report(out);
  EXPECT_NE(md.find("## synthetic"), std::string::npos) << md;
  EXPECT_NE(md.find("| maj@4 | 50.00 |"), std::string::npos) << md;
  EXPECT_LT(md.find("| pass@4 |"), md.find("| maj@1 |")) << md;  // report order survives summary.json
  EXPECT_TRUE(fs::exists(out + "/report.md"));
  // problems.jsonl: the maj answer of b is its first member "7".
  const std::string problems = read_file(out + "/synthetic/problems.jsonl");
  EXPECT_NE(problems.find(R"("maj_answer":"7")"), std::string::npos) << problems;
}
