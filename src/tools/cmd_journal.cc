// r5cfs journal inspect: the journal superblock and every valid record from
// the tail, offline (like a log dump; nothing is written).
#include <chrono>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/units.h"
#include "config/config.h"
#include "journal/reader.h"
#include "tools/commands.h"
#include "engine/engine.h"
#include "tools/config_edit.h"
#include "tools/daemon_link.h"

namespace r5::tools {
namespace {

nlohmann::json entry_json(const format::Entry& e) {
  nlohmann::json j;
  if (const auto* d = std::get_if<format::DataEntry>(&e)) {
    j = {{"type", "data"}, {"array_offset", d->array_offset}, {"pages", d->page_checksums.size()}};
  } else if (const auto* p = std::get_if<format::ParityEntry>(&e)) {
    j = {{"type", "parity"}, {"row", p->row}, {"column_offset", p->column_offset}, {"parity_count", p->parity_count},
         {"pages", p->pages()}};
  } else {
    j = {{"type", "stripe-done"}, {"rows", std::get<format::StripeDoneEntry>(e).rows}};
  }
  return j;
}

std::string entry_text(const nlohmann::json& e) {
  const std::string type = e["type"];
  if (type == "data")
    return fmt::format("data at {} ({} pages)", e["array_offset"].get<uint64_t>(), e["pages"].get<uint64_t>());
  if (type == "parity")
    return fmt::format("parity of row {} at {} ({} pages x {})", e["row"].get<uint64_t>(), e["column_offset"].get<uint32_t>(),
                       e["pages"].get<uint32_t>(), e["parity_count"].get<uint32_t>() == 2 ? "P+Q" : "P");
  return fmt::format("stripe-done rows {}", e["rows"].dump());
}

}  // namespace

int run_journal_inspect(const JournalArgs& args) {
  auto cfg = load_config(args.config);
  if (!cfg) return kExitUsage;
  if (cfg->journal.path.empty()) {
    fmt::print(stderr, "r5cfs: {}: journal.path is not set: this array has no journal\n", cfg->file.string());
    return kExitUsage;
  }
  auto dev = io::open_file(cfg->journal.path, {.read_only = true});
  if (!dev.ok()) {
    fmt::print(stderr, "r5cfs: {}\n", dev.error().message);
    return kExitArray;
  }
  auto sb = journal::read_superblock(**dev);
  if (!sb.ok()) {
    fmt::print(stderr, "r5cfs: {}\n", sb.error().message);
    return kExitArray;
  }
  journal::ScanOptions scan_options;  // as far ahead as recovery looks
  scan_options.lookahead_blocks = engine::JournaledCache::kUnsyncedWindowBlocks;
  auto scan = journal::scan(**dev, *sb, scan_options);
  if (!scan.ok()) {
    fmt::print(stderr, "r5cfs: {}\n", scan.error().message);
    return kExitArray;
  }

  nlohmann::json j;
  j["path"] = cfg->journal.path.string();
  j["array_uuid"] = format::uuid_to_string(sb->array_uuid);
  j["journal_uuid"] = format::uuid_to_string(sb->journal_uuid);
  j["block_count"] = sb->block_count;
  j["size"] = sb->block_count * format::kJournalBlock;
  j["tail_position"] = sb->tail_position;
  j["tail_sequence"] = sb->tail_sequence;
  j["clean"] = (sb->flags & format::kJournalClean) != 0;
  j["head_position"] = scan->head_position;
  j["head_sequence"] = scan->head_sequence;
  j["end_reason"] = scan->end_reason;
  j["corrupt"] = scan->corrupt;
  if (scan->corrupt) j["corruption"] = scan->corruption;
  j["records"] = nlohmann::json::array();
  for (const journal::Record& r : scan->records) {
    nlohmann::json rec = {{"sequence", r.meta.sequence}, {"position", r.meta.position},
                          {"payload_blocks", r.meta.payload_blocks()}, {"entries", nlohmann::json::array()}};
    for (const format::Entry& e : r.meta.entries) rec["entries"].push_back(entry_json(e));
    j["records"].push_back(rec);
  }

  if (args.json) {
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("Journal:      {} ({}, {} blocks)\n", j["path"].get<std::string>(), format_size(j["size"]), sb->block_count);
    fmt::print("Array:        uuid {}; journal uuid {}\n", j["array_uuid"].get<std::string>(), j["journal_uuid"].get<std::string>());
    fmt::print("Tail:         block {}, sequence {}{}\n", sb->tail_position, sb->tail_sequence, j["clean"] ? " (clean)" : "");
    fmt::print("Head:         block {}, sequence {}\n", scan->head_position, scan->head_sequence);
    fmt::print("Records:      {} (the log ends because {})\n", scan->records.size(), scan->end_reason);
    for (const auto& rec : j["records"]) {
      fmt::print("  seq {:>8} block {:>8} payload {:>4}:", rec["sequence"].get<uint64_t>(), rec["position"].get<uint64_t>(),
                 rec["payload_blocks"].get<uint32_t>());
      for (const auto& e : rec["entries"]) fmt::print(" [{}]", entry_text(e));
      fmt::print("\n");
    }
    if (scan->corrupt) fmt::print("CORRUPTION:   {}\n", scan->corruption);
  }
  return scan->corrupt ? kExitArray : kExitOk;
}

}  // namespace r5::tools

namespace r5::tools {

int run_journal_drain(const std::string& config_path) {
  auto cfg = load_config(config_path);
  if (!cfg) return kExitUsage;
  if (cfg->journal.path.empty()) {
    fmt::print(stderr, "r5cfs: {}: journal.path is not set: this array has no journal to drain\n", cfg->file.string());
    return kExitUsage;
  }
  int rc = kExitOk;
  if (std::optional<UniqueFd> fd = connect_daemon(*cfg, rc, /*report_unmounted=*/false)) {
    if (!request(fd->get(), {{"op", "drain"}}, rc)) return rc;
    fmt::print("journal of array '{}' drained: everything written before is on the members\n", cfg->array.name);
    return kExitOk;
  }
  if (rc != kExitNotMounted) return rc;
  // Not mounted: assemble the array here (replaying the journal), drain and
  // close it, holding the control socket so that nobody mounts meanwhile.
  return with_offline_array(*cfg, [&](engine::Engine& engine) -> int {
    if (Status st = engine.close(/*drain=*/true); !st.ok()) {
      fmt::print(stderr, "r5cfs: draining the journal of array '{}': {}\n", cfg->array.name, st.error().message);
      return kExitArray;
    }
    fmt::print("journal of array '{}' drained (offline): the members hold everything and the journal is empty\n",
               cfg->array.name);
    return kExitOk;
  });
}

}  // namespace r5::tools

namespace r5::tools {
namespace {

// Applies config edits, or prints the lines the admin must change by hand.
using Settings = std::vector<std::pair<std::string, std::string>>;

// Returns the exit code: kExitArray when the admin must edit by hand.
int edit_config(const config::Config& cfg, const Settings& set, const std::vector<std::string>& remove) {
  std::vector<std::string> manual;
  for (const auto& [key, value] : set) {
    const std::string table = key.substr(0, key.find('.')), name = key.substr(key.find('.') + 1);
    if (Status st = set_config_value(cfg.file, table, name, value); !st.ok())
      manual.push_back(fmt::format("set {} = {} in [{}] ({})", name, value, table, st.error().message));
  }
  for (const std::string& key : remove) {
    const std::string table = key.substr(0, key.find('.')), name = key.substr(key.find('.') + 1);
    if (Status st = remove_config_key(cfg.file, table, name); !st.ok())
      manual.push_back(fmt::format("remove {} from [{}] ({})", name, table, st.error().message));
  }
  if (manual.empty()) {
    fmt::print("{} updated\n", cfg.file.native());
    return kExitOk;
  }
  fmt::print(stderr, "r5cfs: EDIT {} NOW, before the next mount:\n", cfg.file.native());
  for (const std::string& m : manual) fmt::print(stderr, "  {}\n", m);
  return kExitArray;
}

std::string toml_text(std::string_view s) { return toml_string(std::string(s)).value_or(fmt::format("\"{}\"", s)); }

}  // namespace

int run_journal_mode(const JournalModeArgs& args) {
  auto cfg = load_config(args.config);
  if (!cfg) return kExitUsage;
  if (!config::parse_mode(args.mode)) {
    fmt::print(stderr, "r5cfs: unknown journal mode '{}': write-back, write-through or none\n", args.mode);
    return kExitUsage;
  }
  if (args.mode != "none" && cfg->journal.path.empty()) {
    fmt::print(stderr, "r5cfs: {}: the array has no journal (journal.path); add one with r5cfs journal add\n",
               cfg->file.native());
    return kExitUsage;
  }
  int rc = kExitOk;
  if (std::optional<UniqueFd> fd = connect_daemon(*cfg, rc, /*report_unmounted=*/false)) {
    if (!request(fd->get(), {{"op", "journal-mode"}, {"mode", args.mode}}, rc)) return rc;
    fmt::print("array '{}' runs in journal mode {}\n", cfg->array.name, args.mode);
  } else if (rc != kExitNotMounted) {
    return rc;
  } else {
    fmt::print("array '{}' is not mounted: journal mode {} takes effect at the next mount{}\n", cfg->array.name, args.mode,
               args.mode == "none" ? " (which drains the journal first)" : "");
  }
  return edit_config(*cfg, Settings{{"journal.mode", toml_text(args.mode)}}, {});
}

int run_journal_remove(const JournalRemoveArgs& args) {
  auto cfg = load_config(args.config);
  if (!cfg) return kExitUsage;
  if (cfg->journal.path.empty()) {
    fmt::print(stderr, "r5cfs: {}: the array has no journal (journal.path)\n", cfg->file.native());
    return kExitUsage;
  }
  int rc = kExitOk;
  if (std::optional<UniqueFd> fd = connect_daemon(*cfg, rc, /*report_unmounted=*/false)) {
    if (!request(fd->get(), {{"op", "journal-remove"}, {"force", args.force}}, rc)) return rc;
    fmt::print("journal of array '{}' removed: journal mode none{}\n", cfg->array.name,
               args.force ? "; parity is being resynchronised (r5cfs status)" : "");
  } else if (rc != kExitNotMounted) {
    return rc;
  } else if (!args.force) {
    // Replays the journal, drains it, leaves it clean.
    rc = with_offline_array(*cfg, [&](engine::Engine& engine) -> int {
      if (Status st = engine.set_mode(config::JournalMode::kNone); !st.ok()) {
        fmt::print(stderr, "r5cfs: {}\n", st.error().message);
        return kExitArray;
      }
      return kExitOk;
    });
    if (rc != kExitOk) return rc;
    fmt::print("journal of array '{}' drained and removed (offline)\n", cfg->array.name);
  } else {
    // The journal is unusable: assemble without it. Writes that only it
    // held are lost; the parity of the stripes being written is resynced.
    config::Config without = *cfg;
    without.journal.path.clear();
    without.journal.mode = config::JournalMode::kNone;
    rc = with_offline_array(without, [&](engine::Engine& engine) -> int {
      engine.start_background();  // the resync after an unclean shutdown
      while (engine.resync_running()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (engine.resync_pending()) {
        fmt::print(stderr, "r5cfs: the parity resync did not complete (see the messages above); it runs again at mount\n");
        return kExitArray;
      }
      return kExitOk;
    });
    if (rc != kExitOk) return rc;
    fmt::print("journal of array '{}' removed without replay (offline): writes it alone held are lost; parity resynced\n",
               cfg->array.name);
  }
  return edit_config(*cfg, Settings{{"journal.mode", toml_text("none")}}, {"journal.path", "journal.size"});
}

int run_journal_add(const JournalAddArgs& args) {
  auto cfg = load_config(args.config);
  if (!cfg) return kExitUsage;
  std::optional<uint64_t> size = parse_size(args.size);
  std::optional<config::JournalMode> mode = config::parse_mode(args.mode);
  if (!size || !mode || *mode == config::JournalMode::kNone) {
    fmt::print(stderr, "r5cfs: expected a size such as \"1GiB\" and a mode write-back or write-through, got '{}' and '{}'\n",
               args.size, args.mode);
    return kExitUsage;
  }
  std::error_code ec;
  const std::string path = std::filesystem::absolute(args.path, ec).lexically_normal().native();
  int rc = kExitOk;
  if (std::optional<UniqueFd> fd = connect_daemon(*cfg, rc, /*report_unmounted=*/false)) {
    if (!request(fd->get(), {{"op", "journal-add"}, {"path", path}, {"size", *size}, {"mode", args.mode}, {"force", args.force}},
                 rc))
      return rc;
  } else if (rc != kExitNotMounted) {
    return rc;
  } else {
    rc = with_offline_array(*cfg, [&](engine::Engine& engine) -> int {
      if (Status st = engine.add_journal(path, *size, *mode, args.force); !st.ok()) {
        fmt::print(stderr, "r5cfs: {}\n", st.error().message);
        return st.error().kind == ErrorKind::kInvalid ? kExitUsage : kExitArray;
      }
      return kExitOk;
    });
    if (rc != kExitOk) return rc;
  }
  fmt::print("journal {} added to array '{}': journal mode {}\n", path, cfg->array.name, args.mode);
  return edit_config(*cfg,
              Settings{{"journal.path", toml_text(path)}, {"journal.size", toml_text(format_size(*size))},
                       {"journal.mode", toml_text(args.mode)}},
              {});
}

}  // namespace r5::tools
