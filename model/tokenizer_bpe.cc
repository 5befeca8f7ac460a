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

BpeModel::BpeModel(const json& model, const std::string& where) : cache_(std::make_unique<Cache>()) {
  R1_CHECK(model.is_object(), where, ": model must be an object");
  auto field = [&](const char* name) -> const json* {
    auto it = model.find(name);
    return it == model.end() || it->is_null() ? nullptr : &*it;
  };
  if (const json* d = field("dropout")) {
    R1_CHECK(d->is_number() && d->get<double>() == 0.0, where, ": model.dropout is not supported (BPE dropout)");
  }
  const json* vocab = field("vocab");
  R1_CHECK(vocab, where, ": missing model.vocab");
  R1_CHECK(vocab->is_object(), where, ": model.vocab must be an object {token: id}");
  vocab_.reserve(vocab->size() * 2);
  int32_t max_id = -1;
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    R1_CHECK(it->is_number_integer() && it->get<int64_t>() >= 0 && it->get<int64_t>() < (int64_t{1} << 31),
             where, ": model.vocab[\"", it.key(), "\"] must be a non-negative integer id");
    const auto id = static_cast<int32_t>(it->get<int64_t>());
    vocab_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  id_to_token_.resize(static_cast<size_t>(max_id + 1));
  std::vector<bool> present(id_to_token_.size(), false);
  for (const auto& [tok, id] : vocab_) {
    id_to_token_[id] = tok;
    present[id] = true;
  }
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
    auto it = vocab_.find(unk);
    R1_CHECK(it != vocab_.end(), where, ": model.unk_token \"", unk, "\" is not in model.vocab");
    unk_id_ = it->second;
  }

  const json* merges = field("merges");
  R1_CHECK(merges, where, ": missing model.merges");
  R1_CHECK(merges->is_array(), where, ": model.merges must be an array");
  size_t cap = 16;
  while (cap < merges->size() * 2) cap <<= 1;
  merges_.keys.assign(cap, kEmptyKey);
  merges_.values.assign(cap, 0);
  merges_.mask = cap - 1;
  uint32_t rank = 0;
  for (size_t i = 0; i < merges->size(); ++i) {
    const json& m = (*merges)[i];
    std::string a, b;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      if (s.rfind("#version", 0) == 0) continue;
      const size_t sp = s.find(' ');
      R1_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, where, ": model.merges[", i,
               "] must be \"left right\" (two tokens separated by one space), got \"", s, "\"");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      R1_FAIL(where, ": model.merges[", i, "] must be \"left right\" or [\"left\", \"right\"], got ", m.dump());
    }
    auto ia = vocab_.find(a), ib = vocab_.find(b);
    R1_CHECK(ia != vocab_.end(), where, ": model.merges[", i, "]: token \"", a, "\" is not in model.vocab");
    R1_CHECK(ib != vocab_.end(), where, ": model.merges[", i, "]: token \"", b, "\" is not in model.vocab");
    const size_t plen = continuing_subword_prefix_.size();
    R1_CHECK(b.compare(0, plen, continuing_subword_prefix_) == 0, where, ": model.merges[", i, "]: \"", b,
             "\" lacks the continuing_subword_prefix");
    const std::string merged = a + b.substr(plen);
    auto im = vocab_.find(merged);
    R1_CHECK(im != vocab_.end(), where, ": model.merges[", i, "]: merged token \"", merged,
             "\" is not in model.vocab");
    merges_.insert(pair_key(ia->second, ib->second), (static_cast<uint64_t>(rank) << 32) | im->second);
    ++rank;
  }

  const auto& alphabet = unicode::byte_level_alphabet();
  for (int byte = 0; byte < 256; ++byte) {
    auto it = vocab_.find(alphabet.byte_to_utf8[byte]);
    byte_id_[byte] = it == vocab_.end() ? -1 : it->second;
  }
}

BpeModel::~BpeModel() = default;

int32_t BpeModel::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(id_to_token_.size())) return nullptr;
  const std::string& t = id_to_token_[id];
  if (t.empty()) return nullptr;  // a hole in the id range (vocab keys are never empty in practice)
  return &t;
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
    auto it = vocab_.find(unicode::bytes_to_byte_level(word));
    if (it != vocab_.end()) {
      result.push_back(it->second);
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
