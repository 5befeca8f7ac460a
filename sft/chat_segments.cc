#include "sft/chat_segments.h"

#include "core/check.h"

namespace r1kit::sft {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.size() >= p.size() && s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// Splits trailing whitespace off `s` into `tail`.
std::string rstrip(const std::string& s, std::string* tail) {
  size_t end = s.size();
  while (end > 0 && (s[end - 1] == '\n' || s[end - 1] == ' ' || s[end - 1] == '\t' || s[end - 1] == '\r')) --end;
  if (tail) *tail = s.substr(end);
  return s.substr(0, end);
}

}  // namespace

std::vector<TextSegment> chat_training_segments(const ChatTemplate& tmpl, const std::vector<ChatMessage>& m,
                                                const ChatOptions& options) {
  int last = -1;
  for (int i = 0; i < static_cast<int>(m.size()); ++i)
    if (m[i].role == "assistant") last = i;
  R1_CHECK(last >= 0, "the conversation has no assistant turn to learn");
  ChatOptions gen = options, plain = options;
  gen.add_generation_prompt = true;
  plain.add_generation_prompt = false;
  auto render = [&](int n, const ChatOptions& o, const ChatMessage* extra = nullptr) {
    std::vector<ChatMessage> part(m.begin(), m.begin() + n);
    if (extra) part.push_back(*extra);
    return n == 0 && !extra ? std::string() : tmpl.render(part, o);
  };

  // 1. Earlier assistant turns, learned when the renderings nest.
  std::vector<TextSegment> segs;
  std::string so_far;
  bool nested = true;
  for (int i = 0; i < last && nested; ++i) {
    if (m[i].role != "assistant") continue;
    const std::string p = render(i, gen), f = render(i + 1, plain);
    if (!starts_with(p, so_far) || !starts_with(f, p)) {
      nested = false;
      break;
    }
    std::string tail;
    const std::string learned = rstrip(f.substr(p.size()), &tail);
    segs.push_back({p.substr(so_far.size()), false});
    segs.push_back({learned, true});
    if (!tail.empty()) segs.push_back({tail, false});
    so_far = f;
  }
  // 2. The last assistant turn after its generation prompt.
  const std::string p = render(last, gen);
  if (!nested || !starts_with(p, so_far)) {
    segs.clear();
    so_far.clear();
  }
  segs.push_back({p.substr(so_far.size()), false});
  std::string content = m[last].content;
  for (const char* prefill : {"<think>\n", "<think>"}) {
    if (ends_with(p, prefill) && starts_with(content, prefill)) {
      content = content.substr(std::string(prefill).size());
      break;
    }
  }
  // The end-of-turn text: what the template writes after a sentinel content.
  const ChatMessage sentinel{"assistant", "\x01r1kit-end-of-turn\x01"};
  const std::string f = render(last, plain, &sentinel);
  const size_t at = f.rfind(sentinel.content);
  R1_CHECK(at != std::string::npos, "chat template ", tmpl.name(), ": cannot locate the assistant content in its rendering");
  const std::string eot = rstrip(f.substr(at + sentinel.content.size()), nullptr);
  segs.push_back({content + eot, true});
  // Drop empty segments (e.g. no context before the first turn in the plain template).
  std::vector<TextSegment> out;
  for (auto& s : segs)
    if (!s.text.empty()) out.push_back(std::move(s));
  return out;
}

}  // namespace r1kit::sft
