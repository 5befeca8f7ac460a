#include "rollout/engine.h"

#include <torch/torch.h>

#include <algorithm>
#include <deque>
#include <list>
#include <set>

#include "core/check.h"
#include "core/timer.h"

namespace r1kit {

// A prompt between its prefill and its last sample's finish.
struct GenerationEngine::GroupState {
  EngineRequest req;
  std::vector<int64_t> stop_ids;  // the request's stop tokens plus the model's EOS ids
  int64_t holder = -1;            // slot holding the prompt's K/V until the last sample starts there
  torch::Tensor first_logits;     // [1, V] logits after the prompt: every sample's first draw
  int64_t started = 0, finished = 0;
  Group group;
};

// One sample occupying a slot.
struct GenerationEngine::Seq {
  GroupState* g = nullptr;
  int64_t slot = -1;
  Sample s;
  IncrementalDecoder decoder;
  StopStringMatcher matcher;
  explicit Seq(DecodeFn d) : decoder(std::move(d)) {}
};

// The state of one run() call: slots, waiting groups, and the steps that move them along.
class GenerationEngine::Run {
 public:
  // Uses slots [0, rows) of the engine's cache (which may have more).
  Run(GenerationEngine& e, const GroupSink& done, int64_t rows) : e_(e), done_(done), cache_(*e.cache_) {
    by_slot_.resize(rows);
    for (int64_t r = rows - 1; r >= 0; --r) free_.push_back(r);  // pop_back hands out slot 0 first
    for (int64_t r = 0; r < rows; ++r) cache_.reset_row(r);
  }

  void loop(const RequestSource& next) {
    bool open = true;
    while (true) {
      std::vector<Seq*> starts;
      assign_pending(starts);
      if (open && pending_.empty() && !free_.empty()) {
        open = admit(next);
        assign_pending(starts);
      }
      if (!starts.empty()) start_samples(starts);
      if (active_ == 0) {
        if (!open && pending_.empty()) break;
        R1_CHECK(pending_.empty() || !free_.empty(), "rollout engine: no slot can make progress (token budget too small)");
        continue;
      }
      decode_step();
    }
  }

  double now() const { return clock_.seconds(); }

 private:
  // Hands free slots to waiting samples of prefilled groups, oldest group first. The last sample
  // of a group takes over the holder slot itself (its K/V are exactly the prompt's).
  void assign_pending(std::vector<Seq*>& starts) {
    while (!pending_.empty()) {
      GroupState* g = pending_.front();
      const int64_t G = g->req.prompt.num_samples;
      while (g->started < G) {
        int64_t slot;
        if (g->started == G - 1) {
          slot = g->holder;
        } else if (!free_.empty()) {
          slot = free_.back();
          free_.pop_back();
        } else {
          break;
        }
        starts.push_back(new_seq(g, g->started++, slot));
      }
      if (g->started < G) break;
      pending_.pop_front();
    }
  }

  Seq* new_seq(GroupState* g, int64_t sample_index, int64_t slot) {
    auto seq = std::make_unique<Seq>(e_.decode_);
    seq->g = g;
    seq->slot = slot;
    seq->s.sample_index = sample_index;
    seq->matcher = StopStringMatcher(g->req.options->stop_strings);
    Seq* raw = seq.get();
    by_slot_[slot] = std::move(seq);
    return raw;
  }

  // Pulls requests while free slots remain (each takes min(G, slots left) of them), then
  // prefills their prompts. Returns false once the source is exhausted.
  bool admit(const RequestSource& next) {
    std::vector<GroupState*> fresh;
    int64_t avail = static_cast<int64_t>(free_.size());
    bool open = true;
    while (avail > 0) {
      EngineRequest req;
      if (!next(req)) {
        open = false;
        break;
      }
      e_.check_request(req.prompt, *req.options, req.index);
      R1_CHECK(tokens_needed(req.prompt, *req.options) <= cache_.max_len(), "rollout engine: request ", req.index,
               " needs ", tokens_needed(req.prompt, *req.options), " cache tokens but slots hold ", cache_.max_len());
      groups_.emplace_back();
      GroupState* g = &groups_.back();
      g->req = std::move(req);
      g->stop_ids = g->req.options->stop_token_ids;
      if (!g->req.options->ignore_eos)
        for (int64_t id : e_.model_->config().eos_token_ids) g->stop_ids.push_back(id);
      Group& out = g->group;
      out.index = g->req.index;
      out.id = g->req.prompt.id;
      out.prompt_ids = g->req.prompt.prompt_ids;
      out.samples.resize(g->req.prompt.num_samples);
      out.seed = g->req.seed;
      out.weight_version = g->req.weight_version;
      g->holder = free_.back();
      free_.pop_back();
      avail -= std::min(g->req.prompt.num_samples, avail);
      fresh.push_back(g);
    }
    if (!fresh.empty()) prefill(fresh);
    return open;
  }

  // One forward per (length, batch, chunk): prompts of equal length share a call; prompts longer
  // than max_prefill_tokens are fed in chunks through the cache.
  void prefill(std::vector<GroupState*>& fresh) {
    auto& model = e_.model_;
    const auto dev = model->device();
    const int64_t budget = std::max<int64_t>(1, e_.options_.max_prefill_tokens);
    std::stable_sort(fresh.begin(), fresh.end(), [](const GroupState* a, const GroupState* b) {
      return a->req.prompt.prompt_ids.size() < b->req.prompt.prompt_ids.size();
    });
    for (size_t i = 0; i < fresh.size();) {
      const int64_t L = static_cast<int64_t>(fresh[i]->req.prompt.prompt_ids.size());
      size_t j = i;
      while (j < fresh.size() && static_cast<int64_t>(fresh[j]->req.prompt.prompt_ids.size()) == L &&
             static_cast<int64_t>(j - i + 1) * L <= std::max(budget, L))
        ++j;
      const int64_t k = static_cast<int64_t>(j - i);
      std::vector<int64_t> ids, rows;
      for (size_t b = i; b < j; ++b) {
        const auto& p = fresh[b]->req.prompt.prompt_ids;
        ids.insert(ids.end(), p.begin(), p.end());
        rows.push_back(fresh[b]->holder);
        cache_.reset_row(fresh[b]->holder);
      }
      auto ids_t = torch::tensor(ids, torch::kLong).view({k, L}).to(dev);
      const int64_t chunk = std::max<int64_t>(1, std::min(L, budget / k));
      Timer t;
      const double queued = now();
      torch::Tensor logits;
      for (int64_t c0 = 0; c0 < L; c0 += chunk) {
        const int64_t c = std::min(chunk, L - c0);
        auto pos = torch::arange(c0, c0 + c, torch::TensorOptions().dtype(torch::kLong).device(dev))
                       .unsqueeze(0).expand({k, c});
        auto hidden = model->forward_hidden(ids_t.narrow(1, c0, c), pos, &cache_, &rows);
        if (c0 + c == L) logits = model->decode_logits(hidden.select(1, c - 1)).to(torch::kFloat);
        ++e_.stats_.prefill_forwards;
      }
      const double dt = t.seconds();
      e_.stats_.prefill_s += dt;
      e_.stats_.prefill_tokens += k * L;
      for (size_t b = i; b < j; ++b) {
        GroupState* g = fresh[b];
        R1_CHECK(prefilled_.insert(g->req.index).second, "rollout engine: prompt of request ", g->req.index,
                 " prefilled twice");
        ++e_.stats_.prefills_per_request[g->req.index];
        g->first_logits = logits.narrow(0, static_cast<int64_t>(b - i), 1);
        g->group.queue_s = queued;
        g->group.prefill_s = dt;
        pending_.push_back(g);
      }
      i = j;
    }
  }

  // Copies each group's prompt K/V to its new samples' slots and draws their first tokens from
  // the prompt's logits.
  void start_samples(const std::vector<Seq*>& starts) {
    std::map<GroupState*, std::vector<int64_t>> copies;
    for (Seq* s : starts)
      if (s->slot != s->g->holder) copies[s->g].push_back(s->slot);
    for (auto& [g, dst] : copies) {
      copy_prefix(g->holder, dst);
      e_.stats_.prefix_copies += static_cast<int64_t>(dst.size());
    }
    std::vector<torch::Tensor> logits;
    std::vector<int64_t> slots;
    bool penalty = false;
    for (Seq* s : starts) {
      logits.push_back(s->g->first_logits);
      slots.push_back(s->slot);
      penalty |= s->g->req.options->repetition_penalty != 1.0;
      ++active_;
    }
    if (penalty) reset_seen(starts);
    torch::Tensor first = torch::cat(logits, 0);
    // The prompt logits are not needed once the last sample has its first token. Drop them before
    // sampling: a sample whose first token stops it is finished (and freed, with its group when
    // that was the group's last sample) inside sample_and_append.
    for (Seq* s : starts)
      if (s->g->started == s->g->req.prompt.num_samples) s->g->first_logits = torch::Tensor();
    sample_and_append(first, starts, slots, penalty);
  }

  // The prompt's K/V [0, len) of every layer from `src` to each dst row. (Row by row with copy_:
  // KvCache::copy_row's broadcast index_copy_ rejects a single destination when n_kv_heads == 1,
  // because source and destination then alias.)
  void copy_prefix(int64_t src, const std::vector<int64_t>& dst) {
    const int64_t len = cache_.length(src);
    for (int64_t l = 0; l < cache_.n_layers(); ++l)
      for (torch::Tensor* t : {&cache_.k(l), &cache_.v(l)}) {
        auto from = t->select(0, src).narrow(1, 0, len);
        for (int64_t d : dst) t->select(0, d).narrow(1, 0, len).copy_(from);
      }
    for (int64_t d : dst) cache_.set_length(d, len);
  }

  void reset_seen(const std::vector<Seq*>& starts) {
    const int64_t V = e_.model_->config().vocab_size;
    if (!e_.seen_.defined() || e_.seen_.size(0) != cache_.n_rows() || e_.seen_.size(1) != V)
      e_.seen_ = torch::zeros({cache_.n_rows(), V}, torch::TensorOptions().dtype(torch::kBool).device(e_.model_->device()));
    for (Seq* s : starts) {
      auto row = e_.seen_.select(0, s->slot);
      row.zero_();
      row.index_fill_(0, torch::tensor(s->g->req.prompt.prompt_ids, torch::kLong).to(row.device()), true);
    }
  }

  void decode_step() {
    std::vector<Seq*> seqs;
    std::vector<int64_t> ids, pos, slots;
    bool penalty = false;
    for (auto& s : by_slot_) {
      if (!s || s->s.completion_ids.empty()) continue;
      seqs.push_back(s.get());
      ids.push_back(s->s.completion_ids.back());
      pos.push_back(cache_.length(s->slot));
      slots.push_back(s->slot);
      penalty |= s->g->req.options->repetition_penalty != 1.0;
    }
    const int64_t n = static_cast<int64_t>(seqs.size());
    const auto dev = e_.model_->device();
    Timer t;
    torch::Tensor logits;
    if (e_.static_decoder_) {  // CUDA: one graph replay for the whole step
      logits = e_.static_decoder_->step(cache_, slots, ids);
    } else {
      auto hidden = e_.model_->forward_hidden(torch::tensor(ids, torch::kLong).view({n, 1}).to(dev),
                                              torch::tensor(pos, torch::kLong).view({n, 1}).to(dev), &cache_, &slots);
      logits = e_.model_->decode_logits(hidden.select(1, 0), &e_.logits_);  // CPU f32: the native kernel
    }
    e_.stats_.decode_s += t.seconds();
    ++e_.stats_.decode_steps;
    e_.stats_.decode_tokens += n;
    sample_and_append(logits, seqs, slots, penalty);
  }

  void sample_and_append(const torch::Tensor& logits, const std::vector<Seq*>& seqs,
                         const std::vector<int64_t>& slots, bool penalty) {
    Timer t;
    std::vector<SampleRow> rows(seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i) {
      const Seq* s = seqs[i];
      rows[i] = {s->g->req.options.get(), s->g->req.seed, s->s.sample_index,
                 static_cast<int64_t>(s->s.completion_ids.size())};
    }
    torch::Tensor slot_idx;
    if (penalty) slot_idx = torch::tensor(slots, torch::kLong).to(e_.seen_.device());
    SampledTokens drawn = sample_tokens(logits, rows, penalty ? e_.seen_.index_select(0, slot_idx) : torch::Tensor());
    if (penalty) {
      auto tok = torch::tensor(drawn.tokens, torch::kLong).to(e_.seen_.device());
      e_.seen_.index_put_({slot_idx, tok}, torch::ones({}, e_.seen_.options()));
    }
    e_.stats_.sample_s += t.seconds();
    e_.stats_.generated_tokens += static_cast<int64_t>(seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i) append(seqs[i], drawn.tokens[i], drawn.logprobs[i]);
  }

  void append(Seq* s, int64_t token, float logprob) {
    const SamplingOptions& o = *s->g->req.options;
    auto& ids = s->s.completion_ids;
    if (ids.empty()) s->s.first_token_s = now();
    ids.push_back(token);
    s->s.logprobs.push_back(logprob);
    const auto& stops = s->g->stop_ids;
    if (std::find(stops.begin(), stops.end(), token) != stops.end()) {
      finish(s, FinishReason::kStop, str_cat("token:", token), /*drop_last_from_text=*/true);
    } else if (!s->matcher.empty() && s->matcher.find(s->decoder.update(ids)) != std::string::npos) {
      finish(s, FinishReason::kStop, s->matcher.matched(), false);
    } else if (static_cast<int64_t>(ids.size()) >= o.max_new_tokens) {
      finish(s, FinishReason::kLength, "", false);
    }
  }

  void finish(Seq* s, FinishReason reason, std::string stop_reason, bool drop_last_from_text) {
    GroupState* g = s->g;
    s->s.finish_reason = reason;
    s->s.stop_reason = std::move(stop_reason);
    s->s.decode_s = now() - s->s.first_token_s;
    if (e_.decode_) {
      auto& ids = s->s.completion_ids;
      std::string text = e_.decode_(std::vector<int64_t>(ids.begin(), ids.end() - (drop_last_from_text ? 1 : 0)));
      if (!s->matcher.empty()) {  // vLLM semantics: cut before the earliest stop string
        size_t p = StopStringMatcher::find_in(text, g->req.options->stop_strings);
        if (p != std::string::npos) text.resize(p);
      }
      s->s.text = std::move(text);
    }
    const int64_t slot = s->slot;
    g->group.samples[s->s.sample_index] = std::move(s->s);
    cache_.reset_row(slot);
    free_.push_back(slot);
    by_slot_[slot].reset();
    --active_;
    if (++g->finished == g->req.prompt.num_samples) {
      Group out = std::move(g->group);
      out.total_s = now();
      for (auto it = groups_.begin(); it != groups_.end(); ++it)
        if (&*it == g) {
          groups_.erase(it);
          break;
        }
      done_(std::move(out));
    }
  }

  GenerationEngine& e_;
  const GroupSink& done_;
  KvCache& cache_;
  Timer clock_;
  std::vector<std::unique_ptr<Seq>> by_slot_;
  std::vector<int64_t> free_;          // free slots (back = next)
  std::deque<GroupState*> pending_;    // prefilled groups with samples not yet started
  std::list<GroupState> groups_;       // every group between admission and its last finish
  int64_t active_ = 0;                 // slots holding a sample
  std::set<int64_t> prefilled_;        // request indices prefilled in this run (each exactly once)
};

GenerationEngine::GenerationEngine(Transformer model, EngineOptions options, DecodeFn decode)
    : model_(std::move(model)), options_(options), decode_(std::move(decode)) {
  R1_CHECK(options_.max_batch >= 1, "rollout engine: max_batch must be >= 1, got ", options_.max_batch);
  R1_CHECK(options_.token_budget >= 1, "rollout engine: token_budget must be >= 1, got ", options_.token_budget);
  if (options_.cuda_graphs && model_->device().is_cuda())
    static_decoder_ = std::make_unique<StaticDecoder>(model_, /*cuda_graph=*/true);
}

int64_t GenerationEngine::tokens_needed(const PromptRequest& request, const SamplingOptions& options) {
  return static_cast<int64_t>(request.prompt_ids.size()) + options.max_new_tokens - 1;
}

int64_t GenerationEngine::slots_for(int64_t slot_len) const {
  return std::min(options_.max_batch, options_.token_budget / std::max<int64_t>(1, slot_len));
}

void GenerationEngine::check_request(const PromptRequest& request, const SamplingOptions& options, int64_t index) const {
  const std::string who = str_cat("request ", index, request.id.empty() ? "" : str_cat(" (id \"", request.id, "\")"));
  R1_CHECK(!request.prompt_ids.empty(), who, ": empty prompt");
  R1_CHECK(request.num_samples >= 1, who, ": num_samples must be >= 1, got ", request.num_samples);
  const int64_t V = model_->config().vocab_size;
  for (size_t t = 0; t < request.prompt_ids.size(); ++t)
    R1_CHECK(request.prompt_ids[t] >= 0 && request.prompt_ids[t] < V, who, ": prompt id ", request.prompt_ids[t],
             " at position ", t, " is outside the vocabulary [0, ", V, ")");
  const int64_t need = tokens_needed(request, options);
  R1_CHECK(need <= options_.token_budget, who, ": prompt (", request.prompt_ids.size(), " tokens) + max_new_tokens (",
           options.max_new_tokens, ") needs ", need, " KV-cache tokens but the token budget is ", options_.token_budget);
  R1_CHECK(request.num_samples == 1 || slots_for(need) >= 2, who, ": sharing the prompt across ", request.num_samples,
           " samples needs 2 slots of ", need, " tokens but the token budget is ", options_.token_budget,
           " (max_batch ", options_.max_batch, ")");
  R1_CHECK(options.stop_strings.empty() || decode_, who, ": stop strings need a tokenizer to decode text");
}

std::vector<Group> GenerationEngine::generate(const std::vector<PromptRequest>& requests, const SamplingOptions& options,
                                              const std::function<void(const Group&)>& on_group) {
  options.validate();
  auto shared = std::make_shared<const SamplingOptions>(options);
  int64_t slot_len = 1, total = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    check_request(requests[i], options, static_cast<int64_t>(i));
    slot_len = std::max(slot_len, tokens_needed(requests[i], options));
    total += requests[i].num_samples;
  }
  std::vector<Group> out(requests.size());
  if (requests.empty()) return out;
  size_t next = 0;
  run(
      [&](EngineRequest& r) {
        if (next == requests.size()) return false;
        r.index = static_cast<int64_t>(next);
        r.prompt = requests[next];
        r.options = shared;
        r.seed = requests[next].seed >= 0 ? static_cast<uint64_t>(requests[next].seed) : derive_seed(options.seed, next);
        ++next;
        return true;
      },
      [&](Group&& g) {
        if (on_group) on_group(g);
        out[g.index] = std::move(g);
      },
      slot_len, total);
  return out;
}

void GenerationEngine::run(const RequestSource& next, const GroupSink& done, int64_t slot_len, int64_t max_rows) {
  c10::InferenceMode inference;
  R1_CHECK(slot_len >= 1, "rollout engine: slot length must be >= 1");
  int64_t rows = slots_for(slot_len);
  if (max_rows > 0) rows = std::min(rows, max_rows);
  R1_CHECK(rows >= 1, "rollout engine: a slot of ", slot_len, " tokens does not fit the token budget ",
           options_.token_budget);
  // The cache is allocated once and only ever grows: later calls reuse it (a call uses `rows`
  // rows of at most `slot_len` slots; what else the cache holds is never read).
  if (!cache_ || cache_->n_rows() < rows || cache_->max_len() < slot_len || cache_->dtype() != model_->dtype() ||
      cache_->device() != model_->device()) {
    const int64_t n = cache_ ? std::max(rows, cache_->n_rows()) : rows;
    const int64_t len = cache_ ? std::max(slot_len, cache_->max_len()) : slot_len;
    const bool fits = n * len <= options_.token_budget;
    cache_.reset();  // free the old one before allocating
    cache_ = std::make_unique<KvCache>(model_->config(), fits ? n : rows, fits ? len : slot_len, model_->dtype(),
                                       model_->device());
  }
  model_->fuse_projections();  // one matmul for q|k|v and gate|up while decoding (no-op when fused)
  Timer t;
  Run run(*this, done, rows);
  run.loop(next);
  stats_.run_s += t.seconds();
}

}  // namespace r1kit
