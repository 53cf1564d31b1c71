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

// A basic string the config can carry without escapes.
bool plain(const std::string& s) {
  return s.find_first_of("\"\\\n\r\t") == std::string::npos &&
         std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
}

Status write_atomically(const std::filesystem::path& file, const std::string& text) {
  const std::filesystem::path tmp = file.string() + ".r5cfs-new";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return io_error(errno, fmt::format("{}: {}", tmp.native(), std::strerror(errno)));
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0) (void)::fchmod(fd.get(), st.st_mode & 07777);
  if (::write(fd.get(), text.data(), text.size()) != ssize_t(text.size()) || ::fsync(fd.get()) != 0)
    return io_error(errno, fmt::format("{}: {}", tmp.native(), std::strerror(errno)));
  if (::rename(tmp.c_str(), file.c_str()) != 0) return io_error(errno, fmt::format("{}: {}", file.native(), std::strerror(errno)));
  UniqueFd dir(::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) (void)::fsync(dir.get());
  return {};
}

}  // namespace

Status set_member_path(const std::filesystem::path& file, size_t index, const std::string& new_path) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  if (!in) return io_error(errno, fmt::format("{}: cannot read it", file.native()));
  if (!plain(new_path)) return invalid(fmt::format("{} cannot be written as a plain TOML string", new_path));
  toml::table root;
  try {
    root = toml::parse(text, file.native());
  } catch (const toml::parse_error& e) {
    return invalid(fmt::format("{}: {}", file.native(), e.description()));
  }
  const toml::node* node = root.at_path("array.members").as_array() ? root.at_path("array.members").as_array()->get(index) : nullptr;
  if (node == nullptr || !node->is_string()) return invalid(fmt::format("{}: no array.members[{}]", file.native(), index));
  const std::string old = node->as_string()->get();
  const toml::source_position at = node->source().begin;
  // Find the start of that line, then the string at its column (1-based, in
  // code points: the line up to it must be ASCII for the byte offset to match).
  size_t line_start = 0;
  for (uint32_t line = 1; line < at.line; ++line) {
    line_start = text.find('\n', line_start);
    if (line_start == std::string::npos) return invalid(fmt::format("{}: array.members[{}] not found", file.native(), index));
    ++line_start;
  }
  const size_t pos = line_start + at.column - 1;
  const std::string token = "\"" + old + "\"";
  const bool ascii_prefix = std::all_of(text.begin() + long(line_start), text.begin() + long(std::min(pos, text.size())),
                                        [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (!plain(old) || !ascii_prefix || text.compare(pos, token.size(), token) != 0)
    return invalid(fmt::format("{}:{}: array.members[{}] is not written as a plain \"...\" string", file.native(), at.line, index));
  std::string edited = text;
  edited.replace(pos, token.size(), "\"" + new_path + "\"");
  return write_atomically(file, edited);
}

}  // namespace r5::tools
