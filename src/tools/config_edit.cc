#include "tools/config_edit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "base/unique_fd.h"

namespace r5::tools {

namespace {

struct Loaded {
  std::string text;
  toml::table root;
};

Result<Loaded> load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return io_error(errno, fmt::format("{}: cannot read it", file.native()));
  std::stringstream buffer;
  buffer << in.rdbuf();
  Loaded l{buffer.str(), {}};
  try {
    l.root = toml::parse(l.text, file.native());
  } catch (const toml::parse_error& e) {
    return invalid(fmt::format("{}: {}", file.native(), e.description()));
  }
  return l;
}

// Byte offset of a toml++ position (1-based line, column in code points).
size_t offset_of(const std::string& text, toml::source_position at) {
  size_t pos = 0;
  for (uint32_t line = 1; line < at.line && pos != std::string::npos; ++line) {
    pos = text.find('\n', pos);
    if (pos != std::string::npos) ++pos;
  }
  if (pos == std::string::npos) return text.size();
  for (uint32_t column = 1; column < at.column && pos < text.size(); ++column) {
    ++pos;
    while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;  // UTF-8 continuation
  }
  return pos;
}

Status write_atomically(const std::filesystem::path& file, const std::string& text) {
  const std::filesystem::path tmp = file.string() + ".r5cfs-new";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return io_error(errno, fmt::format("{}: {}", tmp.native(), std::strerror(errno)));
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0) (void)::fchmod(fd.get(), st.st_mode & 07777);
  if (::write(fd.get(), text.data(), text.size()) != ssize_t(text.size()) || ::fsync(fd.get()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return io_error(err, fmt::format("{}: {}", tmp.native(), std::strerror(err)));
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) return io_error(errno, fmt::format("{}: {}", file.native(), std::strerror(errno)));
  UniqueFd dir(::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) (void)::fsync(dir.get());
  return {};
}

// Replaces the source text of `node` by `value`.
Status replace_node(const std::filesystem::path& file, const Loaded& l, const toml::node& node, const std::string& value) {
  const size_t from = offset_of(l.text, node.source().begin), to = offset_of(l.text, node.source().end);
  std::string edited = l.text;
  edited.replace(from, to - from, value);
  return write_atomically(file, edited);
}

}  // namespace

std::optional<std::string> toml_string(const std::string& s) {
  if (std::any_of(s.begin(), s.end(), [](char c) { return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20; }))
    return std::nullopt;
  return "\"" + s + "\"";
}

Status set_config_value(const std::filesystem::path& file, std::string_view table, std::string_view key,
                        const std::string& value) {
  R5_ASSIGN_OR_RETURN(Loaded l, load(file));
  const toml::node* t = l.root.get(table);
  if (t == nullptr) {
    std::string edited = l.text;
    if (!edited.empty() && edited.back() != '\n') edited += '\n';
    edited += fmt::format("\n[{}]\n{} = {}\n", table, key, value);
    return write_atomically(file, edited);
  }
  if (!t->is_table()) return invalid(fmt::format("{}: {} is not a table", file.native(), table));
  if (const toml::node* n = t->as_table()->get(key)) return replace_node(file, l, *n, value);
  // Add the key on the line after the table's header, if it has one.
  const size_t header = offset_of(l.text, {t->source().begin.line, 1});
  const size_t eol = l.text.find('\n', header);
  const std::string first_line = l.text.substr(header, eol == std::string::npos ? std::string::npos : eol - header);
  if (first_line.find(fmt::format("[{}]", table)) == std::string::npos || eol == std::string::npos)
    return invalid(fmt::format("{}: the [{}] table is not written as a [{}] header", file.native(), table, table));
  std::string edited = l.text;
  edited.insert(eol + 1, fmt::format("{} = {}\n", key, value));
  return write_atomically(file, edited);
}

Status remove_config_key(const std::filesystem::path& file, std::string_view table, std::string_view key) {
  R5_ASSIGN_OR_RETURN(Loaded l, load(file));
  const toml::node* n = l.root.at_path(fmt::format("{}.{}", table, key)).node();
  if (n == nullptr) return {};
  const size_t line = offset_of(l.text, {n->source().begin.line, 1});
  if (n->source().begin.line != n->source().end.line)
    return invalid(fmt::format("{}: {}.{} spans several lines", file.native(), table, key));
  std::string edited = l.text;
  edited.insert(line, "# ");
  return write_atomically(file, edited);
}

Status set_member_path(const std::filesystem::path& file, size_t index, const std::string& path) {
  std::optional<std::string> value = toml_string(path);
  if (!value) return invalid(fmt::format("{} cannot be written as a plain TOML string", path));
  R5_ASSIGN_OR_RETURN(Loaded l, load(file));
  const toml::array* members = l.root.at_path("array.members").as_array();
  const toml::node* n = members ? members->get(index) : nullptr;
  if (n == nullptr) return invalid(fmt::format("{}: no array.members[{}]", file.native(), index));
  return replace_node(file, l, *n, *value);
}

}  // namespace r5::tools
