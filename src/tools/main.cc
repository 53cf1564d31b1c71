// r5cfs: offline administration of r5cfs arrays (see r5cfs(8)).
#include <CLI/CLI.hpp>

#include "tools/commands.h"

#include <fmt/format.h>

namespace r5::tools {

std::optional<config::Config> load_config(const std::string& path) {
  auto cfg = config::load(path);
  if (!cfg.ok()) {
    fmt::print(stderr, "r5cfs: {}\n", cfg.error().message);
    return std::nullopt;
  }
  return std::move(*cfg);
}

}  // namespace r5::tools

int main(int argc, char** argv) {
  CLI::App app{"Administer r5cfs RAID5/6 arrays (see r5cfs(8))", "r5cfs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "r5cfs 0.1.0");

  r5::tools::CreateArgs create;
  CLI::App* create_cmd = app.add_subcommand(
      "create", "Create an array: write a superblock on every member (creating missing member files), zeroing them");
  create_cmd->add_option("config", create.config, "Array configuration file (r5cfs.toml(5))")->required();
  create_cmd->add_flag("--force", create.force,
                       "Overwrite members that carry an r5cfs superblock or a filesystem signature");

  r5::tools::InfoArgs info;
  CLI::App* info_cmd = app.add_subcommand(
      "info", "Examine the members offline: geometry, capacity, each member's slot, state and data offset");
  info_cmd->add_option("config", info.config, "Array configuration file (r5cfs.toml(5))")->required();
  info_cmd->add_flag("--json", info.json, "Print JSON instead of text");

  r5::tools::JournalArgs journal;
  CLI::App* journal_cmd = app.add_subcommand("journal", "Journal administration");
  journal_cmd->require_subcommand(1);
  CLI::App* inspect_cmd = journal_cmd->add_subcommand(
      "inspect", "Print the journal superblock and every valid record from the tail, offline");
  inspect_cmd->add_option("config", journal.config, "Array configuration file (r5cfs.toml(5))")->required();
  inspect_cmd->add_flag("--json", journal.json, "Print JSON instead of text");

  std::string drain_config;
  CLI::App* drain_cmd = journal_cmd->add_subcommand(
      "drain", "Write everything in the journal to the members and leave it empty (online, or offline when not mounted)");
  drain_cmd->add_option("config", drain_config, "Array configuration file (r5cfs.toml(5))")->required();

  r5::tools::JournalModeArgs jmode;
  CLI::App* jmode_cmd = journal_cmd->add_subcommand(
      "mode", "Change the journal mode, live when mounted (leaving write-back drains the journal), and in the config file");
  jmode_cmd->add_option("config", jmode.config, "Array configuration file (r5cfs.toml(5))")->required();
  jmode_cmd->add_option("mode", jmode.mode, "write-back, write-through or none")
      ->required()
      ->check(CLI::IsMember({"write-back", "write-through", "none"}));

  r5::tools::JournalRemoveArgs jremove;
  CLI::App* jremove_cmd = journal_cmd->add_subcommand(
      "remove", "Drain the journal and run without it (mode none); the config file stops naming it");
  jremove_cmd->add_option("config", jremove.config, "Array configuration file (r5cfs.toml(5))")->required();
  jremove_cmd->add_flag("--force", jremove.force,
                        "The journal has failed or is gone: mounted, write the cached data to the members without it; "
                        "offline, assemble without it (what only it held is lost); then resync parity");

  r5::tools::JournalAddArgs jadd;
  CLI::App* jadd_cmd = journal_cmd->add_subcommand(
      "add", "Format a journal for an array that has none and use it (live when mounted); updates the config file");
  jadd_cmd->add_option("config", jadd.config, "Array configuration file (r5cfs.toml(5))")->required();
  jadd_cmd->add_option("path", jadd.path, "The journal: a file (created when missing) or a device, ideally on an SSD")
      ->required();
  jadd_cmd->add_option("size", jadd.size, "Its size, such as 1GiB (a file's own size when it exists)")->required();
  jadd_cmd->add_option("--mode", jadd.mode, "write-back (default) or write-through")
      ->check(CLI::IsMember({"write-back", "write-through"}));
  jadd_cmd->add_flag("--force", jadd.force, "Use a device that carries an r5cfs superblock or a filesystem signature");

  r5::tools::StatusArgs status;
  CLI::App* status_cmd = app.add_subcommand(
      "status", "Live state of a mounted array: members, journal fill, dirty stripes, counters, the first error");
  status_cmd->add_option("config", status.config, "Array configuration file (r5cfs.toml(5))")->required();
  status_cmd->add_flag("--json", status.json, "Print JSON (fields in r5cfs(8), STATUS FIELDS)");
  status_cmd->add_flag("--watch", status.watch, "Print again every --interval seconds until interrupted");
  status_cmd->add_option("--interval", status.interval, "Seconds between two prints of --watch (default 2)")
      ->check(CLI::PositiveNumber);

  r5::tools::MemberArgs fail;
  CLI::App* fail_cmd = app.add_subcommand("fail", "Mark a member of a mounted array failed (a drill, or to take a dying disk out)");
  fail_cmd->add_option("config", fail.config, "Array configuration file (r5cfs.toml(5))")->required();
  fail_cmd->add_option("member", fail.member, "The member: its slot number or its path")->required();

  r5::tools::CheckArgs check;
  CLI::App* check_cmd = app.add_subcommand(
      "check", "Verify the parity of every row (scrub), online or offline, with progress; resumes an interrupted check");
  check_cmd->add_option("config", check.config, "Array configuration file (r5cfs.toml(5))")->required();
  check_cmd->add_flag("--repair", check.repair,
                      "Rewrite wrong parity; on RAID6 a single bad block of a row is located and rebuilt");
  check_cmd->add_flag("--restart", check.restart, "Start at the first row instead of resuming an interrupted check");
  check_cmd->add_flag("--stop", check.stop, "Stop the check running in the daemon (it resumes at the next r5cfs check)");
  check_cmd->add_flag("--no-wait", check.no_wait, "Start the check in the daemon and return at once");

  r5::tools::ReplaceArgs replace;
  CLI::App* replace_cmd = app.add_subcommand(
      "replace", "Rebuild a member onto a new file or device, online or offline, with progress; updates the config file");
  replace_cmd->add_option("config", replace.config, "Array configuration file (r5cfs.toml(5))")->required();
  replace_cmd->add_option("member", replace.member, "The member to replace: its slot number or its path")->required();
  replace_cmd->add_option("new_path", replace.new_path,
                          "The new member: a file (created with the members' size when missing) or a block device")
      ->required();
  replace_cmd->add_flag("--force", replace.force, "Use a device that carries an r5cfs superblock or a filesystem signature");
  replace_cmd->add_flag("--no-wait", replace.no_wait, "Start the rebuild in the daemon and return at once");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? r5::tools::kExitOk : r5::tools::kExitUsage;
  }
  if (*create_cmd) return r5::tools::run_create(create);
  if (*info_cmd) return r5::tools::run_info(info);
  if (*inspect_cmd) return r5::tools::run_journal_inspect(journal);
  if (*drain_cmd) return r5::tools::run_journal_drain(drain_config);
  if (*jmode_cmd) return r5::tools::run_journal_mode(jmode);
  if (*jremove_cmd) return r5::tools::run_journal_remove(jremove);
  if (*jadd_cmd) return r5::tools::run_journal_add(jadd);
  if (*status_cmd) return r5::tools::run_status(status);
  if (*fail_cmd) return r5::tools::run_fail(fail);
  if (*check_cmd) return r5::tools::run_check(check);
  if (*replace_cmd) return r5::tools::run_replace(replace);
  return r5::tools::kExitUsage;
}
