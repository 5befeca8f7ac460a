#include "model/tokenizer_json.h"

#include "core/check.h"

namespace r1kit {
namespace {

using Dom = nlohmann::detail::json_sax_dom_parser<json>;

// Forwards SAX events to a DOM builder except inside model.vocab and model.merges, whose
// contents go straight into TokenizerJson's vectors (the DOM gets null in their place).
class Handler {
 public:
  Handler(TokenizerJson* out) : out_(*out), dom_(out->doc, false) {}

  const std::string& error() const { return error_; }

  bool null() { return mode_ == Mode::kDom ? (value_seen(), dom_.null()) : bad_value("null"); }
  bool boolean(bool v) { return mode_ == Mode::kDom ? (value_seen(), dom_.boolean(v)) : bad_value("a boolean"); }
  bool number_integer(json::number_integer_t v) { return integer(v); }
  bool number_unsigned(json::number_unsigned_t v) {
    return integer(v > static_cast<uint64_t>(INT64_MAX) ? -1 : static_cast<int64_t>(v), v);
  }
  bool number_float(json::number_float_t v, const std::string& s) {
    return mode_ == Mode::kDom ? (value_seen(), dom_.number_float(v, s)) : bad_value("a float");
  }
  bool binary(json::binary_t& v) { return mode_ == Mode::kDom ? (value_seen(), dom_.binary(v)) : bad_value("binary"); }

  bool string(std::string& s) {
    switch (mode_) {
      case Mode::kDom:
        value_seen();
        return dom_.string(s);
      case Mode::kVocab:
        return bad_value("a string");
      case Mode::kMerges: {
        ++merge_index_;
        if (s.rfind("#version", 0) == 0) return true;  // HF skips the header line of merges.txt
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          return fail(str_cat("model.merges[", merge_index_ - 1,
                              "] must be \"left right\" (two tokens separated by one space), got \"", s, "\""));
        out_.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
        return true;
      }
      case Mode::kMergePair:
        if (pair_size_ == 0) out_.merges.emplace_back(std::move(s), std::string());
        else if (pair_size_ == 1) out_.merges.back().second = std::move(s);
        ++pair_size_;
        return true;
    }
    return true;
  }

  bool start_object(std::size_t n) {
    if (mode_ == Mode::kDom && pending_ == Pending::kVocab) {
      pending_ = Pending::kNone;
      out_.has_vocab = true;
      mode_ = Mode::kVocab;
      return dom_.null();
    }
    if (mode_ != Mode::kDom) return bad_value("an object");
    value_seen();
    ++depth_;
    if (depth_ == 2 && key1_ == "model") in_model_ = true;
    return dom_.start_object(n);
  }
  bool end_object() {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kDom;
      return true;
    }
    if (depth_ == 2) in_model_ = false;
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    if (mode_ == Mode::kDom && pending_ == Pending::kMerges) {
      pending_ = Pending::kNone;
      out_.has_merges = true;
      mode_ = Mode::kMerges;
      return dom_.null();
    }
    if (mode_ == Mode::kMerges) {
      ++merge_index_;
      mode_ = Mode::kMergePair;
      pair_size_ = 0;
      return true;
    }
    if (mode_ != Mode::kDom) return bad_value("an array");
    value_seen();
    ++depth_;
    return dom_.start_array(n);
  }
  bool end_array() {
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kDom;
      return true;
    }
    if (mode_ == Mode::kMergePair) {
      if (pair_size_ != 2)
        return fail(str_cat("model.merges[", merge_index_ - 1, "] must be [\"left\", \"right\"] (", pair_size_,
                            " strings given)"));
      mode_ = Mode::kMerges;
      return true;
    }
    --depth_;
    return dom_.end_array();
  }
  bool key(std::string& k) {
    if (mode_ == Mode::kVocab) {
      vocab_key_ = std::move(k);
      return true;
    }
    if (mode_ != Mode::kDom) return fail("unexpected key in model.merges");
    if (depth_ == 1) key1_ = k;
    if (depth_ == 2 && in_model_) pending_ = k == "vocab" ? Pending::kVocab : k == "merges" ? Pending::kMerges : Pending::kNone;
    return dom_.key(k);
  }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& ex) {
    return fail(str_cat("invalid JSON at byte ", pos, ": ", ex.what()));
  }

 private:
  enum class Mode { kDom, kVocab, kMerges, kMergePair };
  enum class Pending { kNone, kVocab, kMerges };

  void value_seen() { pending_ = Pending::kNone; }
  bool fail(std::string msg) {
    if (error_.empty()) error_ = std::move(msg);
    return false;
  }
  bool integer(int64_t v, uint64_t raw = 0) {
    switch (mode_) {
      case Mode::kDom:
        value_seen();
        return raw ? dom_.number_unsigned(raw) : dom_.number_integer(v);
      case Mode::kVocab:
        if (v < 0 || v >= (int64_t{1} << 31))
          return fail(str_cat("model.vocab[\"", vocab_key_, "\"] must be a non-negative integer id below 2^31, got ", v));
        out_.vocab.emplace_back(std::move(vocab_key_), v);
        return true;
      default:
        return bad_value("a number");
    }
  }
  bool bad_value(const char* what) {
    if (mode_ == Mode::kVocab)
      return fail(str_cat("model.vocab[\"", vocab_key_, "\"] must be an integer id, got ", what));
    return fail(str_cat("model.merges[", merge_index_ - (mode_ == Mode::kMergePair ? 1 : 0),
                        "] must be \"left right\" or [\"left\", \"right\"], got ", what));
  }

  TokenizerJson& out_;
  Dom dom_;
  Mode mode_ = Mode::kDom;
  Pending pending_ = Pending::kNone;
  int depth_ = 0;
  std::string key1_;  // current key of the root object
  bool in_model_ = false;
  std::string vocab_key_;
  size_t merge_index_ = 0;
  int pair_size_ = 0;
  std::string error_;
};

}  // namespace

TokenizerJson parse_tokenizer_json(const std::string& text, const std::string& where) {
  TokenizerJson out;
  Handler h(&out);
  const bool ok = json::sax_parse(text, &h);
  if (!ok || !h.error().empty()) R1_FAIL(where, ": ", h.error().empty() ? "invalid JSON" : h.error());
  return out;
}

}  // namespace r1kit
