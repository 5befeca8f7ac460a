#include "model/tokenizer.h"

#include <filesystem>
#include <unordered_map>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "model/tokenizer_bpe.h"
#include "model/tokenizer_json.h"
#include "model/tokenizer_parts.h"
#include "model/unicode.h"

namespace r1kit {

struct Tokenizer::Impl {
  std::string path;
  std::vector<AddedToken> added;
  std::unordered_map<std::string, int32_t> added_by_content;
  AddedTokenMatcher raw_matcher;         // "normalized": false tokens, on the input text
  AddedTokenMatcher normalized_matcher;  // "normalized": true tokens, on normalized pieces
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  // Post-processor for add_special_tokens: ids before and after the sequence.
  std::vector<int32_t> prefix_ids, suffix_ids;
  bool byte_level_decoder = false;
  // Per id: the bytes the decoder turns it into (decoded[offsets[id], offsets[id+1])), whether
  // it exists and is special, and which added token it is (-1: a model token).
  std::string decoded;
  std::vector<uint32_t> offsets;
  std::vector<uint8_t> token_flags;  // bit 0: exists, bit 1: special
  std::vector<int32_t> added_index;

  const std::string* token_text(int32_t id) const {
    if (id < 0 || id >= static_cast<int32_t>(token_flags.size()) || !(token_flags[id] & 1)) return nullptr;
    return added_index[id] >= 0 ? &added[added_index[id]].content : model->id_to_token(id);
  }

  void load(TokenizerJson* data, const std::string& where);
  void load_post_processor(const json& j, const std::string& where, const std::string& field);
  void encode_piece(std::string_view piece, std::vector<int32_t>* ids) const;
};

namespace {

const json* find_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

int32_t special_token_id(const json& specials, const std::string& name, const std::string& where,
                         const std::string& field) {
  auto it = specials.find(name);
  R1_CHECK(it != specials.end() && it->is_object(), where, ": ", field, ": special token \"", name,
           "\" is not in special_tokens");
  auto ids = it->find("ids");
  R1_CHECK(ids != it->end() && ids->is_array(), where, ": ", field, ".special_tokens[\"", name, "\"].ids missing");
  R1_CHECK(ids->size() == 1 && (*ids)[0].is_number_integer(), where, ": ", field, ".special_tokens[\"", name,
           "\"].ids must hold one integer id");
  return (*ids)[0].get<int32_t>();
}

}  // namespace

void Tokenizer::Impl::load_post_processor(const json& j, const std::string& where, const std::string& field) {
  R1_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(), where, ": ", field, ".type missing");
  const std::string type = j["type"].get<std::string>();
  if (type == "ByteLevel") return;  // only adjusts offsets
  if (type == "Sequence") {
    const json* procs = find_field(j, "processors");
    R1_CHECK(procs && procs->is_array(), where, ": ", field, ".processors must be an array");
    for (size_t i = 0; i < procs->size(); ++i)
      load_post_processor((*procs)[i], where, str_cat(field, ".processors[", i, "]"));
    return;
  }
  if (type == "TemplateProcessing") {
    const json* single = find_field(j, "single");
    const json* specials = find_field(j, "special_tokens");
    R1_CHECK(single && single->is_array(), where, ": ", field, ".single must be an array");
    static const json kEmpty = json::object();
    if (!specials) specials = &kEmpty;
    bool seen_sequence = false;
    for (size_t i = 0; i < single->size(); ++i) {
      const json& piece = (*single)[i];
      const std::string pf = str_cat(field, ".single[", i, "]");
      if (const json* st = piece.is_object() ? find_field(piece, "SpecialToken") : nullptr) {
        R1_CHECK(st->contains("id") && (*st)["id"].is_string(), where, ": ", pf, ".SpecialToken.id missing");
        const int32_t id = special_token_id(*specials, (*st)["id"].get<std::string>(), where, field);
        (seen_sequence ? suffix_ids : prefix_ids).push_back(id);
      } else if (piece.is_object() && find_field(piece, "Sequence")) {
        R1_CHECK(!seen_sequence, where, ": ", pf, ": more than one Sequence in a single-sequence template");
        seen_sequence = true;
      } else {
        R1_FAIL(where, ": ", pf, " must be {\"SpecialToken\": ...} or {\"Sequence\": ...}");
      }
    }
    R1_CHECK(seen_sequence, where, ": ", field, ".single has no Sequence");
    return;
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto pair_id = [&](const char* key) {
      const json* p = find_field(j, key);
      R1_CHECK(p && p->is_array() && p->size() == 2 && (*p)[1].is_number_integer(), where, ": ", field, ".", key,
               " must be [token, id]");
      return (*p)[1].get<int32_t>();
    };
    prefix_ids.push_back(pair_id("cls"));
    suffix_ids.insert(suffix_ids.begin(), pair_id("sep"));
    return;
  }
  R1_FAIL(where, ": ", field, ".type \"", type,
          "\" is unsupported (supported: ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing, Sequence)");
}

void Tokenizer::Impl::load(TokenizerJson* data, const std::string& where) {
  const json& j = data->doc;
  R1_CHECK(j.is_object(), where, ": tokenizer.json must be a JSON object");
  const json* m = find_field(j, "model");
  R1_CHECK(m, where, ": missing model");
  R1_CHECK(m->is_object(), where, ": model must be an object");
  if (const json* t = find_field(*m, "type")) {
    R1_CHECK(t->is_string(), where, ": model.type must be a string");
    const std::string type = t->get<std::string>();
    R1_CHECK(type == "BPE", where, ": model.type \"", type, "\" is unsupported (only BPE models are supported)");
  }
  model = std::make_unique<BpeModel>(*m, data, where);

  normalizer = Normalizer(j.value("normalizer", json()), where);
  pre_tokenizer = PreTokenizer(j.value("pre_tokenizer", json()), where);
  if (const json* pp = find_field(j, "post_processor")) load_post_processor(*pp, where, "post_processor");

  if (const json* d = find_field(j, "decoder")) {
    std::function<void(const json&, const std::string&)> add_decoder = [&](const json& dj, const std::string& f) {
      R1_CHECK(dj.is_object() && dj.contains("type") && dj["type"].is_string(), where, ": ", f, ".type missing");
      const std::string type = dj["type"].get<std::string>();
      if (type == "ByteLevel") {
        byte_level_decoder = true;
      } else if (type == "Sequence") {
        const json* ds = find_field(dj, "decoders");
        R1_CHECK(ds && ds->is_array(), where, ": ", f, ".decoders must be an array");
        for (size_t i = 0; i < ds->size(); ++i) add_decoder((*ds)[i], str_cat(f, ".decoders[", i, "]"));
      } else {
        R1_FAIL(where, ": ", f, ".type \"", type, "\" is unsupported (supported: ByteLevel, Sequence)");
      }
    };
    add_decoder(*d, "decoder");
  }

  if (const json* at = find_field(j, "added_tokens")) {
    R1_CHECK(at->is_array(), where, ": added_tokens must be an array");
    for (size_t i = 0; i < at->size(); ++i) {
      const json& t = (*at)[i];
      const std::string f = str_cat("added_tokens[", i, "]");
      R1_CHECK(t.is_object(), where, ": ", f, " must be an object");
      R1_CHECK(t.contains("id") && t["id"].is_number_integer() && t["id"].get<int64_t>() >= 0 &&
                   t["id"].get<int64_t>() < (int64_t{1} << 31),
               where, ": ", f, ".id must be a non-negative integer");
      R1_CHECK(t.contains("content") && t["content"].is_string(), where, ": ", f, ".content must be a string");
      AddedToken a;
      a.id = t["id"].get<int32_t>();
      a.content = t["content"].get<std::string>();
      R1_CHECK(!a.content.empty(), where, ": ", f, ".content is empty");
      a.single_word = t.value("single_word", false);
      a.lstrip = t.value("lstrip", false);
      a.rstrip = t.value("rstrip", false);
      a.normalized = t.value("normalized", !t.value("special", false));
      a.special = t.value("special", false);
      added.push_back(std::move(a));
    }
  }
  // HF matches special tokens listed first, then the others; patterns are unique in practice.
  std::vector<const AddedToken*> raw, norm;
  std::vector<std::string> raw_pat, norm_pat;
  for (int pass = 0; pass < 2; ++pass) {
    for (const AddedToken& a : added) {
      if (a.special != (pass == 0)) continue;
      added_by_content.emplace(a.content, a.id);
      if (a.normalized) {
        norm.push_back(&a);
        norm_pat.push_back(normalizer.apply(a.content));
      } else {
        raw.push_back(&a);
        raw_pat.push_back(a.content);
      }
    }
  }
  raw_matcher.build(raw, raw_pat);
  normalized_matcher.build(norm, norm_pat);

  // Id tables for decode.
  int32_t max_id = model->max_id();
  for (const AddedToken& a : added) max_id = std::max(max_id, a.id);
  token_flags.assign(max_id + 1, 0);
  added_index.assign(max_id + 1, -1);
  for (int32_t id = 0; id <= model->max_id(); ++id)
    if (model->id_to_token(id)) token_flags[id] = 1;
  for (size_t i = 0; i < added.size(); ++i) {
    added_index[added[i].id] = static_cast<int32_t>(i);
    token_flags[added[i].id] = 1;
  }
  std::unordered_map<std::string, bool> special_contents;
  for (const AddedToken& a : added)
    if (a.special) special_contents[a.content] = true;
  offsets.assign(max_id + 2, 0);
  decoded.reserve(static_cast<size_t>(max_id) * 6);
  for (int32_t id = 0; id <= max_id; ++id) {
    offsets[id] = static_cast<uint32_t>(decoded.size());
    const std::string* text = token_text(id);
    if (!text) continue;
    if (!special_contents.empty() && special_contents.count(*text)) token_flags[id] |= 2;
    // Tokens made only of byte-level characters become those bytes; others (added tokens such
    // as <｜User｜>) are copied as they are, like HF's ByteLevel decoder.
    const size_t before = decoded.size();
    if (!byte_level_decoder || !unicode::byte_level_to_bytes(*text, &decoded)) {
      decoded.resize(before);
      decoded += *text;
    }
  }
  offsets[max_id + 1] = static_cast<uint32_t>(decoded.size());
}

void Tokenizer::Impl::encode_piece(std::string_view piece, std::vector<int32_t>* ids) const {
  thread_local std::deque<std::string> storage;
  thread_local std::vector<std::string_view> words;
  storage.clear();
  pre_tokenizer.split(piece, &storage, &words);
  for (std::string_view w : words) model->tokenize(w, ids);
}

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::from_json_text(const std::string& text, const std::string& where) {
  Tokenizer t;
  t.impl_ = std::make_unique<Impl>();
  TokenizerJson data = parse_tokenizer_json(text, where);
  t.impl_->load(&data, where);
  return t;
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / "tokenizer.json").string();
  R1_CHECK(std::filesystem::exists(file), file, ": tokenizer file not found");
  Tokenizer t = from_json_text(read_file(file), file);
  t.impl_->path = file;
  return t;
}

std::vector<int32_t> Tokenizer::encode(const std::string& input, bool add_special_tokens) const {
  R1_CHECK(impl_, "Tokenizer::encode on an empty tokenizer");
  const Impl& im = *impl_;
  std::string repaired;
  std::string_view text = input;
  if (!unicode::is_valid_utf8(text)) {
    repaired = unicode::utf8_lossy(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids.insert(ids.end(), im.prefix_ids.begin(), im.prefix_ids.end());
  im.raw_matcher.split(text, [&](std::string_view piece, const AddedToken* tok) {
    if (tok) {
      ids.push_back(tok->id);
      return;
    }
    if (im.normalizer.identity() && im.normalized_matcher.empty()) {
      im.encode_piece(piece, &ids);
      return;
    }
    const std::string normalized = im.normalizer.apply(piece);
    im.normalized_matcher.split(normalized, [&](std::string_view p, const AddedToken* t) {
      if (t) ids.push_back(t->id);
      else im.encode_piece(p, &ids);
    });
  });
  if (add_special_tokens) ids.insert(ids.end(), im.suffix_ids.begin(), im.suffix_ids.end());
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  R1_CHECK(impl_, "Tokenizer::decode on an empty tokenizer");
  const Impl& im = *impl_;
  std::string out;
  bool first = true;
  for (int32_t id : ids) {
    if (id < 0 || id >= static_cast<int32_t>(im.token_flags.size()) || !(im.token_flags[id] & 1)) continue;
    if (skip_special_tokens && (im.token_flags[id] & 2)) continue;
    if (!im.byte_level_decoder && !first) out += ' ';  // no decoder: HF joins tokens with spaces
    out.append(im.decoded, im.offsets[id], im.offsets[id + 1] - im.offsets[id]);
    first = false;
  }
  return unicode::is_valid_utf8(out) ? out : unicode::utf8_lossy(out);
}

int32_t Tokenizer::token_to_id(const std::string& token) const {
  auto it = impl_->added_by_content.find(token);
  if (it != impl_->added_by_content.end()) return it->second;
  return impl_->model->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  const std::string* t = impl_->token_text(id);
  return t ? *t : std::string();
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < static_cast<int32_t>(impl_->token_flags.size()) && (impl_->token_flags[id] & 2);
}

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(impl_->token_flags.size()); }

const std::string& Tokenizer::path() const { return impl_->path; }

}  // namespace r1kit
