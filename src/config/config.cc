// TOML++ throws; this file catches its exceptions and turns every problem
// into one Result error line "FILE: KEY: found VALUE, expected WHAT", so a
// user can fix the config without reading the source.
#include "config/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <span>
#include <sstream>
#include <system_error>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include "base/unique_fd.h"
#include "base/units.h"

namespace r5::config {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMinChunkSize = geometry::kPageSize;
// md allows bigger chunks, but a row of 64MiB chunks already pins hundreds of
// MiB of stripe pages in the cache; nobody needs more for an image file.
constexpr uint64_t kMaxChunkSize = 64ull << 20;
// Below this a member holds no data area after its superblock and reserves.
constexpr uint64_t kMinMemberSize = 4ull << 20;
constexpr uint64_t kMinJournalSize = 1ull << 20;
// The cache must hold at least a few full rows to aggregate anything.
constexpr uint64_t kMinCacheMemory = 16ull << 20;
// The member superblock stores the name in 32 bytes, NUL terminated
// (format::kNameMax); config sits below format, so the value is repeated here.
constexpr size_t kMaxNameLength = 31;
// NAME_MAX: the FUSE directory entry of the image must be a valid file name.
constexpr size_t kMaxImageNameLength = 255;
// Bounded so that "now + max_age" can never overflow a nanosecond clock in
// the flusher, whatever the user writes.
constexpr std::chrono::milliseconds kMinMaxAge{1};
constexpr std::chrono::milliseconds kMaxMaxAge{24 * 60 * 60 * 1000};
// A config file is a few hundred bytes; the cap keeps load() from reading
// /dev/zero or a disk image forever when pointed at the wrong file.
constexpr size_t kMaxConfigBytes = 1 << 20;

constexpr std::string_view kArrayKeys[] = {"name",        "level",   "layout",        "chunk_size",
                                           "member_size", "members", "sync_speed_max"};
constexpr std::string_view kJournalKeys[] = {"path", "size", "mode", "sync", "drain_on_unmount"};
constexpr std::string_view kCacheKeys[] = {"memory", "max_age"};
constexpr std::string_view kMountKeys[] = {"image", "control"};
// sockaddr_un::sun_path holds 108 bytes with the terminating NUL.
constexpr size_t kMaxSocketPathLength = 107;

struct TableKeys {
  std::string_view table;
  std::span<const std::string_view> keys;
};
constexpr TableKeys kTables[] = {
    {"array", kArrayKeys},
    {"journal", kJournalKeys},
    {"cache", kCacheKeys},
    {"mount", kMountKeys},
};

constexpr std::string_view kSizeExpected = "a size such as 65536 or \"64KiB\" (suffix B, KiB, MiB, GiB or TiB)";
constexpr std::string_view kDurationExpected = "a duration such as \"10s\" or \"500ms\" (suffix ms, s, m or h)";
constexpr std::string_view kLayoutExpected =
    "\"left-asymmetric\", \"right-asymmetric\", \"left-symmetric\" or \"right-symmetric\"";
constexpr std::string_view kModeExpected = "\"write-back\", \"write-through\" or \"none\"";
constexpr std::string_view kSyncExpected = "\"fsync\" or \"always\"";

// Error messages are one line even when the config holds control characters
// in a string or a quoted key, so they are escaped the way TOML writes them.
std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (u < 0x20 || u == 0x7f)
          out += fmt::format("\\u{:04X}", unsigned(u));
        else
          out += c;
    }
  }
  return out;
}

std::string quote(std::string_view s) { return "\"" + escape(s) + "\""; }

// For text that is not a TOML value (file names, TOML++'s own messages, which
// already quote with backslashes): only control characters are escaped.
std::string one_line(std::string_view s) {
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f)
      out += c == '\n' ? std::string("\\n") : fmt::format("\\u{:04X}", unsigned(u));
    else
      out += c;
  }
  return out;
}

template <typename T>
std::string streamed(const T& value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// "found VALUE": strings quoted as written, everything else with its type so
// that `level = "5"` reads differently from `level = 5`.
std::string describe(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return quote(node.as_string()->get());
    case toml::node_type::integer: return fmt::format("integer {}", node.as_integer()->get());
    case toml::node_type::floating_point: return "float " + streamed(*node.as_floating_point());
    case toml::node_type::boolean: return fmt::format("boolean {}", node.as_boolean()->get());
    case toml::node_type::date: return "date " + one_line(streamed(node.as_date()->get()));
    case toml::node_type::time: return "time " + one_line(streamed(node.as_time()->get()));
    case toml::node_type::date_time: return "date-time " + one_line(streamed(node.as_date_time()->get()));
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::none: break;
  }
  return "nothing";
}

bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

// Paths are compared after resolving symlinks and "..", so that "./a", "a"
// and a link to a all name one member. weakly_canonical tolerates files that
// do not exist yet (r5cfs create makes them); on any other error (EACCES,
// ELOOP) the lexical form is the best we can do.
fs::path identity(const fs::path& absolute) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(absolute, ec);
  if (ec) p = absolute;
  p = p.lexically_normal();
  if (!p.has_filename() && p.has_relative_path()) p = p.parent_path();  // "dir/" equals "dir"
  return p;
}

// One key of one table: its node (null when absent) and its name in messages.
struct Field {
  const toml::node* node;
  std::string key;
};

class Parser {
 public:
  Parser(std::string shown, fs::path absolute_file)
      : shown_(std::move(shown)), folder_(absolute_file.parent_path()) {
    config_.file = std::move(absolute_file);
    file_identity_ = identity(config_.file);
  }

  Result<Config> run(const toml::table& root) {
    R5_TRY(check_keys(root));
    R5_TRY(parse_array(table(root, "array")));
    R5_TRY(parse_journal(table(root, "journal")));
    R5_TRY(parse_cache(table(root, "cache")));
    R5_TRY(parse_mount(table(root, "mount")));
    return std::move(config_);
  }

 private:
  Error fail(std::string_view key, std::string_view what) const {
    return invalid(fmt::format("{}: {}: {}", shown_, key, what));
  }
  Error found(std::string_view key, const toml::node& node, std::string_view expected) const {
    return fail(key, fmt::format("found {}, expected {}", describe(node), expected));
  }
  Error found(const Field& f, std::string_view expected) const { return found(f.key, *f.node, expected); }
  Error missing(const Field& f, std::string_view expected) const {
    return fail(f.key, fmt::format("missing, expected {}", expected));
  }

  static const toml::table& table(const toml::table& root, std::string_view name) {
    static const toml::table kEmpty;
    const toml::table* t = root.get_as<toml::table>(name);
    return t ? *t : kEmpty;
  }

  static Field field(const toml::table& t, std::string_view table, std::string_view name) {
    return Field{t.get(name), fmt::format("{}.{}", table, name)};
  }

  // Unknown keys are reported before anything else: "levle = 5" should say
  // "unknown key 'array.levle'", not "array.level: missing".
  Status check_keys(const toml::table& root) const {
    for (const auto& [key, node] : root) {
      const TableKeys* spec = nullptr;
      for (const TableKeys& t : kTables)
        if (key.str() == t.table) spec = &t;
      if (!spec) {
        std::string_view what = node.is_table() ? "table" : "key";
        return invalid(fmt::format("{}: unknown {} '{}', expected one of the tables [array] [journal] [cache] [mount]",
                                   shown_, what, escape(key.str())));
      }
      if (!node.is_table()) return found(spec->table, node, "a table");
      for (const auto& [sub, unused] : *node.as_table()) {
        if (std::find(spec->keys.begin(), spec->keys.end(), sub.str()) == spec->keys.end())
          return invalid(fmt::format("{}: unknown key '{}.{}', expected one of: {}", shown_, spec->table,
                                     escape(sub.str()), fmt::join(spec->keys, ", ")));
      }
    }
    return {};
  }

  // The string value, or nullptr when the key is absent. A wrong type is told
  // `expected`.
  Result<const std::string*> string_of(const Field& f, std::string_view expected) const {
    if (!f.node) return nullptr;
    if (!f.node->is_string()) return found(f, expected);
    return &f.node->as_string()->get();
  }

  // Sizes are a TOML integer (bytes) or a string as parse_size() reads it.
  Result<std::optional<uint64_t>> size_of(const Field& f) const {
    if (!f.node) return std::optional<uint64_t>();
    if (const auto* i = f.node->as_integer()) {
      if (i->get() < 0) return found(f, kSizeExpected);
      return std::optional<uint64_t>(uint64_t(i->get()));
    }
    if (const auto* s = f.node->as_string()) {
      auto size = parse_size(s->get());
      if (!size) return found(f, kSizeExpected);
      return size;
    }
    return found(f, kSizeExpected);
  }

  // A path as written, resolved against the config file's folder.
  Result<fs::path> path_of(const Field& f) const {
    R5_ASSIGN_OR_RETURN(const std::string* text, string_of(f, "a string"));
    if (!text) return missing(f, "a path");
    if (text->empty()) return found(f, "a path");
    // The kernel would silently cut the path at the NUL.
    if (text->find('\0') != std::string::npos) return found(f, "a path without NUL characters");
    fs::path p(*text);
    fs::path out = (p.is_absolute() ? p : folder_ / p).lexically_normal();
    if (identity(out) == file_identity_) return fail(f.key, fmt::format("{} is the config file itself", quote(*text)));
    return out;
  }

  Status parse_array(const toml::table& t) {
    ArrayConfig& a = config_.array;

    Field name = field(t, "array", "name");
    R5_ASSIGN_OR_RETURN(const std::string* name_text, string_of(name, "a string"));
    if (!name_text) return missing(name, "a string");
    if (!valid_name(*name_text))
      return found(name, fmt::format("1 to {} letters, digits, '.', '_' or '-'", kMaxNameLength));
    a.name = *name_text;

    Field level = field(t, "array", "level");
    if (!level.node) return missing(level, "5 or 6");
    // Compared as int64 before narrowing, so no value wraps into range.
    const auto* level_int = level.node->as_integer();
    if (!level_int || (level_int->get() != 5 && level_int->get() != 6)) return found(level, "5 or 6");
    a.level = uint32_t(level_int->get());

    Field layout = field(t, "array", "layout");
    R5_ASSIGN_OR_RETURN(const std::string* layout_text, string_of(layout, kLayoutExpected));
    if (layout_text) {
      auto parsed = geometry::parse_layout(*layout_text);
      if (!parsed) return found(layout, kLayoutExpected);
      // md's other RAID6 layouts order the syndrome differently; only
      // left-symmetric is implemented.
      if (a.level == 6 && *parsed != geometry::Layout::kLeftSymmetric)
        return found(layout, "\"left-symmetric\" for RAID6");
      a.layout = *parsed;
    }

    Field chunk = field(t, "array", "chunk_size");
    R5_ASSIGN_OR_RETURN(std::optional<uint64_t> chunk_size, size_of(chunk));
    if (chunk_size) {
      if (!is_power_of_two(*chunk_size) || *chunk_size < kMinChunkSize)
        return found(chunk, "a power of two >= 4KiB");
      if (*chunk_size > kMaxChunkSize) return found(chunk, "at most 64MiB");
      a.chunk_size = uint32_t(*chunk_size);
    }

    Field member = field(t, "array", "member_size");
    R5_ASSIGN_OR_RETURN(std::optional<uint64_t> member_size, size_of(member));
    if (member_size) {
      if (*member_size < kMinMemberSize) return found(member, "at least 4MiB");
      a.member_size = *member_size;
    }

    Field speed = field(t, "array", "sync_speed_max");
    R5_ASSIGN_OR_RETURN(std::optional<uint64_t> speed_value, size_of(speed));
    if (speed_value) a.sync_speed_max = *speed_value;

    return parse_members(t);
  }

  Status parse_members(const toml::table& t) {
    ArrayConfig& a = config_.array;
    Field members = field(t, "array", "members");
    if (!members.node) return missing(members, "an array of member paths");
    const toml::array* list = members.node->as_array();
    if (!list) return found(members, "an array of member paths");

    uint32_t min_members = a.level == 6 ? 4 : 3;
    if (list->size() < min_members)
      return fail(members.key, fmt::format("found {} members, expected at least {} for RAID{}", list->size(),
                                           min_members, a.level));
    if (list->size() > geometry::kMaxMembers)
      return fail(members.key,
                  fmt::format("found {} members, expected at most {}", list->size(), geometry::kMaxMembers));

    for (size_t i = 0; i < list->size(); i++) {
      Field member{list->get(i), fmt::format("array.members[{}]", i)};
      R5_ASSIGN_OR_RETURN(fs::path path, path_of(member));
      fs::path id = identity(path);
      for (size_t j = 0; j < member_identities_.size(); j++) {
        if (member_identities_[j] != id) continue;
        const std::string& first = (*list)[j].as_string()->get();
        const std::string& again = member.node->as_string()->get();
        std::string alias = first == again ? "" : fmt::format(" (also as {})", quote(first));
        return fail(members.key, fmt::format("{} is listed twice{}", quote(again), alias));
      }
      member_identities_.push_back(std::move(id));
      a.members.push_back(std::move(path));
    }

    // Belt and braces: the geometry module is the authority on what it can map.
    geometry::Geometry g;
    g.level = a.level;
    g.layout = a.layout;
    g.members = uint32_t(a.members.size());
    g.chunk_size = a.chunk_size;
    if (Status s = g.validate(); !s.ok()) return s.error().with_context(fmt::format("{}: array", shown_));
    return {};
  }

  Status parse_journal(const toml::table& t) {
    JournalConfig& j = config_.journal;

    Field mode = field(t, "journal", "mode");
    R5_ASSIGN_OR_RETURN(const std::string* mode_text, string_of(mode, kModeExpected));
    if (mode_text) {
      std::optional<JournalMode> parsed = parse_mode(*mode_text);
      if (!parsed) return found(mode, kModeExpected);
      j.mode = *parsed;
    }

    Field path = field(t, "journal", "path");
    if (path.node) {
      R5_ASSIGN_OR_RETURN(j.path, path_of(path));
      fs::path id = identity(j.path);
      for (size_t i = 0; i < member_identities_.size(); i++) {
        if (member_identities_[i] == id)
          return fail(path.key,
                      fmt::format("{} is also array.members[{}]", quote(path.node->as_string()->get()), i));
      }
    } else if (j.mode != JournalMode::kNone) {
      return missing(path, "a path (required unless journal.mode = \"none\")");
    }

    Field size = field(t, "journal", "size");
    R5_ASSIGN_OR_RETURN(std::optional<uint64_t> size_bytes, size_of(size));
    if (size_bytes) {
      if (*size_bytes < kMinJournalSize) return found(size, "at least 1MiB");
      j.size = *size_bytes;
    }

    Field sync = field(t, "journal", "sync");
    R5_ASSIGN_OR_RETURN(const std::string* sync_text, string_of(sync, kSyncExpected));
    if (sync_text) {
      if (*sync_text == "fsync")
        j.sync = JournalSync::kFsync;
      else if (*sync_text == "always")
        j.sync = JournalSync::kAlways;
      else
        return found(sync, kSyncExpected);
    }

    Field drain = field(t, "journal", "drain_on_unmount");
    if (drain.node) {
      if (!drain.node->is_boolean()) return found(drain, "true or false");
      j.drain_on_unmount = drain.node->as_boolean()->get();
    }
    return {};
  }

  Status parse_cache(const toml::table& t) {
    CacheConfig& c = config_.cache;

    Field memory = field(t, "cache", "memory");
    R5_ASSIGN_OR_RETURN(std::optional<uint64_t> memory_bytes, size_of(memory));
    if (memory_bytes) {
      if (*memory_bytes < kMinCacheMemory) return found(memory, "at least 16MiB");
      c.memory = *memory_bytes;
    }

    Field max_age = field(t, "cache", "max_age");
    R5_ASSIGN_OR_RETURN(const std::string* age_text, string_of(max_age, kDurationExpected));
    if (age_text) {
      auto age = parse_duration(*age_text);
      if (!age) return found(max_age, kDurationExpected);
      if (*age < kMinMaxAge || *age > kMaxMaxAge) return found(max_age, "between 1ms and 24h");
      c.max_age = *age;
    }
    return {};
  }

  Status parse_mount(const toml::table& t) {
    Field image = field(t, "mount", "image");
    R5_ASSIGN_OR_RETURN(const std::string* name, string_of(image, "a string"));
    if (name) {
      if (name->empty() || *name == "." || *name == ".." || name->find('/') != std::string::npos ||
          name->find('\0') != std::string::npos)
        return found(image, "a plain file name (no '/', not \".\" or \"..\")");
      if (name->size() > kMaxImageNameLength)
        return found(image, fmt::format("a file name of at most {} bytes", kMaxImageNameLength));
      config_.mount.image = *name;
    }

    Field control = field(t, "mount", "control");
    if (control.node) {
      R5_ASSIGN_OR_RETURN(config_.mount.control, path_of(control));
    } else {
      config_.mount.control = fs::path("/run/r5cfs") / (config_.array.name + ".sock");
    }
    if (config_.mount.control.native().size() > kMaxSocketPathLength)
      return fail(control.key, fmt::format("{} is longer than {} bytes, the limit of a UNIX socket path",
                                           quote(config_.mount.control.native()), kMaxSocketPathLength));
    return {};
  }

  std::string shown_;  // the config file as the user named it, for messages
  fs::path folder_;    // absolute folder relative paths resolve against
  fs::path file_identity_;
  std::vector<fs::path> member_identities_;
  Config config_;
};

}  // namespace

std::string_view mode_name(JournalMode mode) {
  switch (mode) {
    case JournalMode::kWriteBack: return "write-back";
    case JournalMode::kWriteThrough: return "write-through";
    case JournalMode::kNone: return "none";
  }
  return "unknown";
}

std::optional<JournalMode> parse_mode(std::string_view name) {
  for (JournalMode m : {JournalMode::kWriteBack, JournalMode::kWriteThrough, JournalMode::kNone})
    if (name == mode_name(m)) return m;
  return std::nullopt;
}

std::string_view sync_name(JournalSync sync) {
  switch (sync) {
    case JournalSync::kFsync: return "fsync";
    case JournalSync::kAlways: return "always";
  }
  return "unknown";
}

Result<Config> parse(std::string_view text, const std::filesystem::path& file) {
  std::string shown = one_line(file.string());
  std::error_code ec;
  fs::path absolute = fs::absolute(file, ec);
  if (ec) return invalid(fmt::format("{}: cannot make the path absolute: {}", shown, ec.message()));
  try {
    toml::table root = toml::parse(text, file.string());
    return Parser(shown, absolute.lexically_normal()).run(root);
  } catch (const toml::parse_error& e) {
    const toml::source_position& at = e.source().begin;
    return invalid(fmt::format("{}:{}:{}: {}", shown, at.line, at.column, one_line(e.description())));
  } catch (const fs::filesystem_error& e) {
    return invalid(fmt::format("{}: {}", shown, one_line(e.what())));
  }
}

Result<Config> load(const std::filesystem::path& file) {
  std::string shown = one_line(file.string());
  auto os_error = [&](int err) {
    std::string message = fmt::format("{}: {}", shown, std::strerror(err));
    return err == ENOENT ? not_found(std::move(message)) : io_error(err, std::move(message));
  };
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return os_error(errno);
  std::string text;
  char buffer[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error(errno);
    }
    if (n == 0) break;
    if (text.size() + size_t(n) > kMaxConfigBytes)
      return invalid(fmt::format("{}: larger than {}, not a config file", shown, format_size(kMaxConfigBytes)));
    text.append(buffer, size_t(n));
  }
  return parse(text, file);
}

}  // namespace r5::config
