#include "datagen/prompt_file.h"

#include <map>

#include "core/check.h"
#include "core/fs.h"
#include "model/tokenizer.h"

namespace r1kit::datagen {

PromptBuilder::PromptBuilder(const Tokenizer& tok, PromptFileOptions options) : tok_(tok), opts_(std::move(options)) {
  opts_.chat_options.add_generation_prompt = true;
}

const ChatTemplate& PromptBuilder::chat_template() const {
  if (!template_) {
    template_ = std::make_unique<ChatTemplate>(opts_.chat_template.empty()
                                                   ? ChatTemplate::from_tokenizer_config(opts_.tokenizer_dir)
                                                   : ChatTemplate::by_name(opts_.chat_template));
  }
  return *template_;
}

json PromptBuilder::messages_of(const json& record) const {
  if (record.contains(opts_.messages_field)) return record.at(opts_.messages_field);
  return json::array({{{"role", "user"}, {"content", record.at(opts_.prompt_field)}}});
}

PromptItem PromptBuilder::build(const json& record, int64_t index, const std::string& where_) const {
  const std::string where = where_.empty() ? "record " + std::to_string(index) : where_;
  R1_CHECK(record.is_object(), where, ": expected a JSON object with \"", opts_.prompt_field, "\" or \"",
           opts_.messages_field, "\"");
  PromptItem item;
  item.record = record;
  if (record.contains(opts_.id_field)) {
    const json& id = record.at(opts_.id_field);
    R1_CHECK(id.is_string() || id.is_number_integer(), where, ": \"", opts_.id_field, "\" must be a string or an integer");
    item.id = id.is_string() ? id.get<std::string>() : id.dump();
    R1_CHECK(!item.id.empty(), where, ": \"", opts_.id_field, "\" is empty");
  } else {
    item.id = std::to_string(index);
  }
  const bool has_prompt = record.contains(opts_.prompt_field), has_messages = record.contains(opts_.messages_field);
  R1_CHECK(has_prompt != has_messages, where, ": needs exactly one of \"", opts_.prompt_field, "\" (string) and \"",
           opts_.messages_field, "\" (list of {role, content})");
  std::vector<int32_t> ids;
  if (has_prompt && !opts_.chat) {
    R1_CHECK(record.at(opts_.prompt_field).is_string(), where, ": \"", opts_.prompt_field, "\" must be a string");
    item.text = record.at(opts_.prompt_field).get<std::string>();
    ids = tok_.encode(item.text, /*add_special_tokens=*/true);
  } else {
    if (has_prompt)
      R1_CHECK(record.at(opts_.prompt_field).is_string(), where, ": \"", opts_.prompt_field, "\" must be a string");
    const std::vector<ChatMessage> msgs = chat_messages_from_json(messages_of(record), where, opts_.messages_field);
    R1_CHECK(msgs.back().role != "assistant", where, ": the conversation ends with an assistant turn; a prompt ",
             "needs the conversation up to the turn to generate");
    try {
      item.text = chat_template().render(msgs, opts_.chat_options);
    } catch (const Error& e) {
      R1_FAIL(where, ": ", e.what());
    }
    ids = tok_.encode(item.text, /*add_special_tokens=*/false);  // the template writes BOS itself
  }
  R1_CHECK(!ids.empty(), where, ": the prompt encodes to no tokens");
  item.ids.assign(ids.begin(), ids.end());
  return item;
}

std::vector<PromptItem> read_prompt_file(const std::string& path, const Tokenizer& tok, const PromptFileOptions& options) {
  R1_CHECK(path_exists(path), path, ": prompt file not found");
  PromptBuilder builder(tok, options);
  std::vector<PromptItem> out;
  std::map<std::string, int> line_of;
  for_each_jsonl(path, [&](const json& rec, int line) {
    // for_each_jsonl prefixes errors with "path:line: ".
    PromptItem item = builder.build(rec, static_cast<int64_t>(out.size()), "prompt");
    auto [it, fresh] = line_of.emplace(item.id, line);
    R1_CHECK(fresh, "id '", item.id, "' already used on line ", it->second);
    out.push_back(std::move(item));
  });
  R1_CHECK(!out.empty(), path, ": no prompts");
  return out;
}

}  // namespace r1kit::datagen
