// `r1kit generate`: generation with the rollout engine (rollout/), one prompt or a JSONL batch.
//
// Single prompt (greedy by default):
//   r1kit generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [--max-new-tokens 64]
//                  [--temperature 0] [--json]  ->  {"completion_ids": [...], "text": "..."}
// Batch (sampled, temperature 1 by default), G completions per prompt, resumable:
//   r1kit generate --model DIR --prompts IN.jsonl --out OUT.jsonl -n G [sampling options]
//   IN.jsonl lines: {"prompt": "text"} or {"messages": [{"role", "content"}...]} (rendered with the
//   chat template from tokenizer_config.json, or --chat-template NAME), optional "id".
//   OUT.jsonl: one line per prompt, written as its G completions finish; prompts already in OUT
//   are skipped, so an interrupted run continues where it stopped.
// Stops on the EOS ids of config.json / generation_config.json unless --ignore-eos.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <set>

#include "cli/command.h"
#include "cli/model_options.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/progress.h"
#include "model/chat_template.h"
#include "model/lora.h"
#include "model/tokenizer.h"
#include "rollout/engine.h"
#include "rollout/pool.h"

namespace {

using namespace r1kit;

struct GenerateArgs {
  cli::ModelArgs model;
  std::string tokenizer;                  // tokenizer dir ("" = the model dir when it has tokenizer.json)
  std::string prompt, prompt_ids;         // single-prompt mode
  std::string prompts, out;               // batch mode
  std::string chat_template;              // family name instead of tokenizer_config.json
  int64_t n = 1;                          // completions per prompt
  SamplingOptions sampling;               // temperature NaN = mode default
  std::string stop_token_ids;             // comma-separated
  bool json = false;                      // single mode: print JSON
  bool logprobs = false;                  // batch mode: write per-token log-probs
  bool no_progress = false;
  int workers = 1;
  EngineOptions engine;
};

std::unique_ptr<Tokenizer> load_tokenizer(const GenerateArgs& a) {
  const std::string dir = a.tokenizer.empty() ? a.model.model : a.tokenizer;
  const std::string path = dir + "/tokenizer.json";
  if (!path_exists(path)) {
    R1_CHECK(a.tokenizer.empty(), "--tokenizer: ", path, " does not exist");
    return nullptr;
  }
  return std::make_unique<Tokenizer>(Tokenizer::from_file(path));
}

DecodeFn decoder_for(const Tokenizer* tok) {
  if (!tok) return nullptr;
  return [tok](const std::vector<int64_t>& ids) {
    return tok->decode(std::vector<int32_t>(ids.begin(), ids.end()), /*skip_special_tokens=*/true);
  };
}

std::vector<int64_t> encode(const Tokenizer& tok, const std::string& text, bool add_special) {
  std::vector<int64_t> ids;
  for (int32_t id : tok.encode(text, add_special)) ids.push_back(id);
  return ids;
}

SamplingOptions resolve_sampling(const GenerateArgs& a, double default_temperature, const ModelConfig& cfg) {
  SamplingOptions o = a.sampling;
  if (std::isnan(o.temperature)) o.temperature = default_temperature;
  if (!a.stop_token_ids.empty()) o.stop_token_ids = cli::parse_id_list(a.stop_token_ids, "--stop-token-ids", cfg.vocab_size);
  o.validate();
  return o;
}

int run_single(const GenerateArgs& a) {
  R1_CHECK(a.prompt.empty() != a.prompt_ids.empty(), "give exactly one of --prompt and --prompt-ids (or --prompts FILE)");
  ModelConfig cfg;
  Transformer model = cli::load_model_from_args(a.model, &cfg);
  auto tok = load_tokenizer(a);
  PromptRequest req;
  req.num_samples = a.n;
  if (!a.prompt.empty()) {
    R1_CHECK(tok != nullptr, "--prompt needs a tokenizer: ", a.model.model, "/tokenizer.json does not exist (use --prompt-ids)");
    req.prompt_ids = encode(*tok, a.prompt, /*add_special=*/true);
    R1_CHECK(!req.prompt_ids.empty(), "--prompt encodes to no tokens");
  } else {
    req.prompt_ids = cli::parse_id_list(a.prompt_ids, "--prompt-ids", cfg.vocab_size);
  }
  const SamplingOptions o = resolve_sampling(a, 0.0, cfg);
  EngineOptions eo = a.engine;
  eo.token_budget = std::max(eo.token_budget, 2 * GenerationEngine::tokens_needed(req, o));
  GenerationEngine engine(model, eo, decoder_for(tok.get()));
  const Group g = engine.generate({req}, o)[0];
  for (const Sample& s : g.samples) {
    if (a.json) {
      json j = {{"completion_ids", s.completion_ids}, {"text", s.text}};
      if (a.logprobs) j["logprobs"] = s.logprobs;
      j["finish_reason"] = finish_reason_name(s.finish_reason);
      std::cout << dump_line(j) << "\n";
    } else if (tok) {
      std::cout << s.text << "\n";
    } else {
      for (size_t i = 0; i < s.completion_ids.size(); ++i) std::cout << (i ? "," : "") << s.completion_ids[i];
      std::cout << "\n";
    }
  }
  return 0;
}

// One prompt line of the input file.
struct BatchPrompt {
  int64_t line_index = 0;  // position among the file's records (stable across resumes)
  json id;                 // the record's "id", else the index
  std::string text;        // rendered prompt text
  std::vector<int64_t> ids;
};

std::string resume_key(const json& id) { return id.dump(); }

// Reads the records already in `out`, rewriting the file without a torn last line (a run killed
// mid-write). Returns the keys of the prompts that are done.
std::set<std::string> load_done(const std::string& out) {
  std::set<std::string> done;
  if (!path_exists(out)) return done;
  const std::string text = read_file(out);
  std::string kept;
  size_t start = 0;
  int line = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    const bool complete = end != std::string::npos;
    if (!complete) end = text.size();
    const std::string l = text.substr(start, end - start);
    ++line;
    start = end + 1;
    if (l.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j;
    try {
      j = json::parse(l);
    } catch (const std::exception&) {
      R1_CHECK(!complete || start >= text.size(), out, ":", line, ": not JSON; refusing to resume over a damaged file");
      continue;  // torn last line: dropped below
    }
    R1_CHECK(j.is_object() && j.contains("id"), out, ":", line, ": a generate output record needs an \"id\"");
    done.insert(resume_key(j["id"]));
    kept += l + "\n";
  }
  if (kept.size() != text.size()) write_file_atomic(out, kept);
  return done;
}

std::vector<BatchPrompt> read_prompts(const GenerateArgs& a, const Tokenizer* tok) {
  std::vector<BatchPrompt> out;
  std::unique_ptr<ChatTemplate> tmpl;
  int64_t index = 0;
  for_each_jsonl(a.prompts, [&](const json& rec, int line) {
    R1_CHECK(rec.is_object(), "expected an object with \"prompt\" or \"messages\"");
    BatchPrompt p;
    p.line_index = index++;
    p.id = rec.contains("id") ? rec["id"] : json(p.line_index);
    R1_CHECK(tok != nullptr, "batch mode needs a tokenizer (tokenizer.json in the model dir, or --tokenizer)");
    if (rec.contains("prompt")) {
      R1_CHECK(rec["prompt"].is_string(), "\"prompt\" must be a string");
      p.text = rec["prompt"].get<std::string>();
      p.ids = encode(*tok, p.text, /*add_special=*/true);
    } else if (rec.contains("messages")) {
      const json& m = rec["messages"];
      R1_CHECK(m.is_array() && !m.empty(), "\"messages\" must be a non-empty array");
      std::vector<ChatMessage> msgs;
      for (size_t i = 0; i < m.size(); ++i) {
        R1_CHECK(m[i].is_object() && m[i].contains("role") && m[i]["role"].is_string() && m[i].contains("content") &&
                     m[i]["content"].is_string(),
                 "messages[", i, "] must be {\"role\": string, \"content\": string}");
        msgs.push_back({m[i]["role"].get<std::string>(), m[i]["content"].get<std::string>()});
      }
      if (!tmpl) {
        const std::string dir = a.tokenizer.empty() ? a.model.model : a.tokenizer;
        tmpl = std::make_unique<ChatTemplate>(a.chat_template.empty() ? ChatTemplate::from_tokenizer_config(dir)
                                                                      : ChatTemplate::by_name(a.chat_template));
      }
      ChatOptions co;
      co.add_generation_prompt = true;
      p.text = tmpl->render(msgs, co);
      p.ids = encode(*tok, p.text, /*add_special=*/false);  // the template writes BOS itself
    } else {
      R1_FAIL("needs a \"prompt\" string or a \"messages\" array");
    }
    R1_CHECK(!p.ids.empty(), "the prompt encodes to no tokens");
    (void)line;
    out.push_back(std::move(p));
  });
  return out;
}

int run_batch(const GenerateArgs& a) {
  R1_CHECK(!a.out.empty(), "--prompts needs --out FILE.jsonl");
  R1_CHECK(a.prompt.empty() && a.prompt_ids.empty(), "--prompts cannot be combined with --prompt / --prompt-ids");
  ModelConfig cfg;
  Transformer model = cli::load_model_from_args(a.model, &cfg);
  auto tok = load_tokenizer(a);
  const SamplingOptions o = resolve_sampling(a, 1.0, cfg);
  std::vector<BatchPrompt> all = read_prompts(a, tok.get());
  const std::set<std::string> done = load_done(a.out);
  std::vector<const BatchPrompt*> todo;
  std::vector<PromptRequest> requests;
  for (const auto& p : all) {
    if (done.count(resume_key(p.id))) continue;
    PromptRequest r;
    r.id = resume_key(p.id);
    r.prompt_ids = p.ids;
    r.num_samples = a.n;
    // Keyed by the line, so a resumed run draws what the uninterrupted one would have.
    r.seed = static_cast<int64_t>(derive_seed(o.seed, static_cast<uint64_t>(p.line_index)) >> 1);
    todo.push_back(&p);
    requests.push_back(std::move(r));
  }
  std::fprintf(stderr, "r1kit generate: %zu prompts, %zu already in %s, %zu to do, %lld samples each\n", all.size(),
               all.size() - todo.size(), a.out.c_str(), todo.size(), static_cast<long long>(a.n));
  if (todo.empty()) return 0;

  std::FILE* f = std::fopen(a.out.c_str(), "ab");
  R1_CHECK(f != nullptr, a.out, ": cannot open for appending");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, &std::fclose);
  ProgressOptions bar;
  bar.label = "generate";
  bar.unit = "prompt";
  bar.total = static_cast<int64_t>(all.size());
  bar.initial = static_cast<int64_t>(all.size() - todo.size());
  if (a.no_progress) bar.enabled = 0;
  Progress progress(bar);
  auto write_group = [&](const Group& g) {
    const BatchPrompt& p = *todo[g.index];
    json completions = json::array();
    for (const Sample& s : g.samples) {
      json c = {{"text", s.text}, {"completion_ids", s.completion_ids},
                {"finish_reason", finish_reason_name(s.finish_reason)}};
      if (!s.stop_reason.empty()) c["stop_reason"] = s.stop_reason;
      if (a.logprobs) c["logprobs"] = s.logprobs;
      completions.push_back(std::move(c));
      progress.add("tok", static_cast<double>(s.completion_ids.size()));
    }
    json rec = {{"id", p.id}, {"index", p.line_index}, {"prompt", p.text}, {"prompt_tokens", p.ids.size()},
                {"completions", std::move(completions)}, {"seed", g.seed}};
    const std::string line = dump_line(rec) + "\n";
    R1_CHECK(std::fwrite(line.data(), 1, line.size(), f) == line.size() && std::fflush(f) == 0, a.out,
             ": write failed");
    progress.advance();
  };
  if (a.workers <= 1) {
    GenerationEngine engine(model, a.engine, decoder_for(tok.get()));
    engine.generate(requests, o, write_group);
  } else {
    PoolOptions po;
    po.num_workers = a.workers;
    po.engine = a.engine;
    po.with_lora = static_cast<bool>(find_lora(model));  // --adapter: every replica applies it
    const torch::Device dev = model->device();
    if (dev.is_cuda())
      for (int i = 0; i < a.workers; ++i) po.devices.emplace_back(torch::kCUDA, static_cast<c10::DeviceIndex>(i));
    RolloutPool pool(model, po, decoder_for(tok.get()));
    model = Transformer(nullptr);  // the replicas hold the weights now
    pool.generate(requests, o, write_group);
  }
  ::fsync(fileno(f));
  return 0;
}

r1kit::cli::Registrar reg{
    "generate", "generate completions with the rollout engine (one prompt, or a JSONL batch x G samples)",
    [](CLI::App& sub) {
      auto a = std::make_shared<GenerateArgs>();
      a->sampling.temperature = std::numeric_limits<double>::quiet_NaN();
      a->sampling.max_new_tokens = 64;
      cli::add_model_options(sub, a->model);
      sub.add_option("--tokenizer", a->tokenizer, "tokenizer directory (default: the model directory)");
      sub.add_option("--prompt", a->prompt, "prompt text (encoded with BOS as the tokenizer's post-processor adds it)");
      sub.add_option("--prompt-ids", a->prompt_ids, "prompt token ids, comma-separated");
      sub.add_option("--prompts", a->prompts, "batch mode: JSONL with \"prompt\" or \"messages\" (and optional \"id\")");
      sub.add_option("--out", a->out, "batch mode: output JSONL (one line per prompt; existing prompts are skipped)");
      sub.add_option("--chat-template", a->chat_template, "chat template family for \"messages\" (default: tokenizer_config.json)");
      sub.add_option("-n,--num-samples", a->n, "completions per prompt")->check(CLI::PositiveNumber);
      sub.add_option("--max-new-tokens", a->sampling.max_new_tokens, "maximum new tokens (default 64)")->check(CLI::PositiveNumber);
      sub.add_option("--temperature", a->sampling.temperature, "0 = greedy (default 0 for one prompt, 1 for --prompts)");
      sub.add_option("--top-p", a->sampling.top_p, "nucleus sampling mass in (0, 1]");
      sub.add_option("--top-k", a->sampling.top_k, "keep the k most likely tokens (0 = off)");
      sub.add_option("--min-p", a->sampling.min_p, "drop tokens below min_p x the top probability");
      sub.add_option("--repetition-penalty", a->sampling.repetition_penalty, "HF repetition penalty (1 = off)");
      sub.add_option("--seed", a->sampling.seed, "sampling seed (prompt i uses a seed derived from it and i)");
      sub.add_option("--stop", a->sampling.stop_strings, "stop string (repeatable); the text is cut before it");
      sub.add_option("--stop-token-ids", a->stop_token_ids, "extra stop token ids, comma-separated");
      sub.add_flag("--ignore-eos", a->sampling.ignore_eos, "do not stop on the model's EOS ids");
      sub.add_flag("--json", a->json, "one prompt: print {\"completion_ids\": [...], \"text\": \"...\"}");
      sub.add_flag("--logprobs", a->logprobs, "include each completion token's sampling log-prob");
      sub.add_flag("--no-progress", a->no_progress, "no progress bar on stderr");
      sub.add_option("--workers", a->workers, "rollout workers (policy replicas; one per GPU)")->check(CLI::PositiveNumber);
      sub.add_option("--max-batch", a->engine.max_batch, "sequences decoded together")->check(CLI::PositiveNumber);
      sub.add_option("--token-budget", a->engine.token_budget, "KV-cache tokens per worker (bounds memory)")
          ->check(CLI::PositiveNumber);
      return [a]() -> int { return a->prompts.empty() ? run_single(*a) : run_batch(*a); };
    }};

}  // namespace
