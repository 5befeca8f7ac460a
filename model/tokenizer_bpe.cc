#include "model/tokenizer_bpe.h"

#include <functional>
#include <queue>

#include "core/check.h"
#include "model/unicode.h"

namespace r1kit {
namespace {

constexpr uint64_t kEmptyKey = ~uint64_t{0};
constexpr size_t kMaxCachedWordBytes = 256;   // longer words are rare; HF does not cache them either
constexpr size_t kMaxCacheEntriesPerShard = 8192;

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

size_t mix(uint64_t k) { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> 20); }

const std::string& require_string(const json& j, const std::string& where, const std::string& field) {
  R1_CHECK(j.is_string(), where, ": ", field, " must be a string");
  return j.get_ref<const std::string&>();
}

}  // namespace

struct BpeModel::Cache {
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>> map;
  };
  Shard shards[kShards];
};

bool BpeModel::MergeTable::find(uint64_t key, uint32_t* rank, int32_t* id) const {
  if (keys.empty()) return false;
  for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
    if (keys[i] == key) {
      *rank = static_cast<uint32_t>(values[i] >> 32);
      *id = static_cast<int32_t>(values[i] & 0xFFFFFFFFu);
      return true;
    }
    if (keys[i] == kEmptyKey) return false;
  }
}

void BpeModel::MergeTable::insert(uint64_t key, uint64_t value) {
  for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
    if (keys[i] == key || keys[i] == kEmptyKey) {
      keys[i] = key;  // a repeated pair keeps the later rank, as HF's HashMap collect does
      values[i] = value;
      return;
    }
  }
}

BpeModel::BpeModel(const json& model, TokenizerJson* data, const std::string& where)
    : cache_(std::make_unique<Cache>()) {
  R1_CHECK(model.is_object(), where, ": model must be an object");
  auto field = [&](const char* name) -> const json* {
    auto it = model.find(name);
    return it == model.end() || it->is_null() ? nullptr : &*it;
  };
  if (const json* d = field("dropout")) {
    R1_CHECK(d->is_number() && d->get<double>() == 0.0, where, ": model.dropout is not supported (BPE dropout)");
  }
  if (!data->has_vocab) {
    R1_CHECK(!field("vocab"), where, ": model.vocab must be an object {token: id}");
    R1_FAIL(where, ": missing model.vocab");
  }
  tokens_.reserve(data->vocab.size());
  int32_t max_id = -1;
  for (auto& [tok, id] : data->vocab) {
    tokens_.push_back(std::move(tok));
    max_id = std::max(max_id, static_cast<int32_t>(id));
  }
  vocab_.reserve(tokens_.size());
  id_to_index_.assign(static_cast<size_t>(max_id + 1), -1);
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const auto id = static_cast<int32_t>(data->vocab[i].second);
    vocab_[tokens_[i]] = id;  // a repeated key keeps its last id, like a JSON object
    id_to_index_[id] = static_cast<int32_t>(i);
  }
  data->vocab.clear();
  data->vocab.shrink_to_fit();

  if (const json* p = field("continuing_subword_prefix"))
    continuing_subword_prefix_ = require_string(*p, where, "model.continuing_subword_prefix");
  if (const json* s = field("end_of_word_suffix"))
    end_of_word_suffix_ = require_string(*s, where, "model.end_of_word_suffix");
  if (const json* im = field("ignore_merges")) {
    R1_CHECK(im->is_boolean(), where, ": model.ignore_merges must be a boolean");
    ignore_merges_ = im->get<bool>();
  }
  if (const json* f = field("fuse_unk")) fuse_unk_ = f->is_boolean() && f->get<bool>();
  if (const json* b = field("byte_fallback")) byte_fallback_ = b->is_boolean() && b->get<bool>();
  if (const json* u = field("unk_token")) {
    const std::string& unk = require_string(*u, where, "model.unk_token");
    unk_id_ = find(unk);
    R1_CHECK(unk_id_ >= 0, where, ": model.unk_token \"", unk, "\" is not in model.vocab");
  }

  if (!data->has_merges) {
    R1_CHECK(!field("merges"), where, ": model.merges must be an array");
    R1_FAIL(where, ": missing model.merges");
  }
  const auto& merges = data->merges;
  size_t cap = 16;
  while (cap < merges.size() * 2) cap <<= 1;
  merges_.keys.assign(cap, kEmptyKey);
  merges_.values.assign(cap, 0);
  merges_.mask = cap - 1;
  const size_t plen = continuing_subword_prefix_.size();
  std::string merged;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const int32_t ia = find(a), ib = find(b);
    R1_CHECK(ia >= 0, where, ": model.merges (rank ", rank, "): token \"", a, "\" is not in model.vocab");
    R1_CHECK(ib >= 0, where, ": model.merges (rank ", rank, "): token \"", b, "\" is not in model.vocab");
    R1_CHECK(b.compare(0, plen, continuing_subword_prefix_) == 0, where, ": model.merges (rank ", rank, "): \"", b,
             "\" lacks the continuing_subword_prefix");
    merged.assign(a);
    merged.append(b, plen, std::string::npos);
    const int32_t im = find(merged);
    R1_CHECK(im >= 0, where, ": model.merges (rank ", rank, "): merged token \"", merged, "\" is not in model.vocab");
    merges_.insert(pair_key(ia, ib), (static_cast<uint64_t>(rank) << 32) | static_cast<uint32_t>(im));
  }
  data->merges.clear();
  data->merges.shrink_to_fit();

  const auto& alphabet = unicode::byte_level_alphabet();
  for (int byte = 0; byte < 256; ++byte) {
    byte_id_[byte] = find(alphabet.byte_to_utf8[byte]);
  }
}

BpeModel::~BpeModel() = default;

int32_t BpeModel::find(std::string_view token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

int32_t BpeModel::token_to_id(const std::string& token) const { return find(token); }

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(id_to_index_.size()) || id_to_index_[id] < 0) return nullptr;
  return &tokens_[id_to_index_[id]];
}

int32_t BpeModel::symbol_id(std::string_view ch, bool first, bool last) const {
  std::string s;
  if (!first) s += continuing_subword_prefix_;
  s.append(ch.data(), ch.size());
  if (last) s += end_of_word_suffix_;
  return token_to_id(s);
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>* out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  const auto& alphabet = unicode::byte_level_alphabet();
  const bool plain = continuing_subword_prefix_.empty() && end_of_word_suffix_.empty();
  int32_t pending_unk = -1;  // fused unknown run not yet emitted
  auto push = [&](int32_t id) {
    const auto n = static_cast<int32_t>(sym.size());
    sym.push_back({id, n - 1, n + 1, true});
  };
  for (size_t i = 0; i < word.size(); ++i) {
    const auto byte = static_cast<uint8_t>(word[i]);
    const int32_t id = plain ? byte_id_[byte] : symbol_id(alphabet.byte_to_utf8[byte], i == 0, i + 1 == word.size());
    if (id >= 0) {
      if (pending_unk >= 0) push(pending_unk);
      pending_unk = -1;
      push(id);
      continue;
    }
    if (byte_fallback_) {
      // HF looks up <0xXX> for each byte of the unknown symbol's text.
      const std::string& ch = alphabet.byte_to_utf8[byte];
      std::vector<int32_t> fb;
      for (char c : ch) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", static_cast<uint8_t>(c));
        const int32_t f = token_to_id(name);
        if (f < 0) break;
        fb.push_back(f);
      }
      if (fb.size() == ch.size()) {
        for (int32_t f : fb) push(f);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (pending_unk >= 0 && !fuse_unk_) push(pending_unk);
      pending_unk = unk_id_;
    }
    // Without unk_token the symbol is dropped, as HF does.
  }
  if (pending_unk >= 0) push(pending_unk);
  if (!sym.empty()) sym.back().next = -1;

  struct Merge {
    uint32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator<(const Merge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Merge> queue;
  uint32_t rank;
  int32_t new_id;
  for (size_t i = 0; i + 1 < sym.size(); ++i) {
    if (merges_.find(pair_key(sym[i].id, sym[i + 1].id), &rank, &new_id))
      queue.push({rank, static_cast<int32_t>(i), new_id});
  }
  // Always merge the lowest-ranked adjacent pair (leftmost on ties); stale entries are skipped.
  while (!queue.empty()) {
    const Merge top = queue.top();
    queue.pop();
    Symbol& left = sym[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[left.next];
    if (!merges_.find(pair_key(left.id, right.id), &rank, &new_id) || new_id != top.new_id) continue;
    left.id = new_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) sym[left.next].prev = top.pos;
    if (left.prev >= 0 && merges_.find(pair_key(sym[left.prev].id, left.id), &rank, &new_id))
      queue.push({rank, left.prev, new_id});
    if (left.next >= 0 && merges_.find(pair_key(left.id, sym[left.next].id), &rank, &new_id))
      queue.push({rank, top.pos, new_id});
  }
  for (const Symbol& s : sym)
    if (s.alive) out->push_back(s.id);
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (word.size() == 1 && byte_id_[static_cast<uint8_t>(word[0])] >= 0 && end_of_word_suffix_.empty()) {
    ids->push_back(byte_id_[static_cast<uint8_t>(word[0])]);
    return;
  }
  const bool cacheable = word.size() < kMaxCachedWordBytes;
  Cache::Shard* shard = nullptr;
  std::string key;
  if (cacheable) {
    key.assign(word.data(), word.size());
    shard = &cache_->shards[std::hash<std::string>()(key) % Cache::kShards];
    std::lock_guard<std::mutex> lock(shard->mu);
    auto it = shard->map.find(key);
    if (it != shard->map.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> result;
  bool whole = false;
  if (ignore_merges_) {
    const int32_t id = find(unicode::bytes_to_byte_level(word));
    if (id >= 0) {
      result.push_back(id);
      whole = true;
    }
  }
  if (!whole) merge_word(word, &result);
  ids->insert(ids->end(), result.begin(), result.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(shard->mu);
    if (shard->map.size() < kMaxCacheEntriesPerShard) shard->map.emplace(std::move(key), std::move(result));
  }
}

}  // namespace r1kit
