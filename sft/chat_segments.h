// A conversation as training text: the chat template's rendering cut into segments that are
// learned (assistant turns and the template's end-of-turn text) or context (system/user/tool turns,
// headers, the generation prompt). Tokenising each segment separately makes the context tokens
// exactly what the rollout engine sees when it generates that turn (the rendered prompt with the
// generation prompt, encoded as one string), and the learned tokens what it would produce.
//
// How each assistant turn i is found, with P_i = render(turns before i, add_generation_prompt):
//   - the last assistant turn: context P_i, then learned = its content as written in the record
//     (templates that strip reasoning from assistant turns, like DeepSeek-R1's, would otherwise drop
//     the very trace being distilled; a "<think>" the generation prompt already pre-fills is not
//     repeated) + the template's end-of-turn text (trailing whitespace is not learned);
//   - earlier assistant turns: learned = what the template renders for them (render(turns up to i)
//     minus P_i), when the renderings nest (each is a prefix of the next). A template that renders
//     earlier turns differently once later turns follow (R1, Qwen3 drop earlier reasoning) breaks
//     the nesting: then the whole history is context and only the last turn is learned.
// Turns after the last assistant turn are ignored.
#pragma once
#include <string>
#include <vector>

#include "model/chat_template.h"

namespace r1kit::sft {

struct TextSegment {
  std::string text;
  bool learned = false;
};

// Throws Error when the conversation has no assistant turn or the template rejects it.
std::vector<TextSegment> chat_training_segments(const ChatTemplate& tmpl, const std::vector<ChatMessage>& messages,
                                                const ChatOptions& options = {});

}  // namespace r1kit::sft
