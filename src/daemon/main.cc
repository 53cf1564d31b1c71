// mount.r5cfs CONFIG MOUNTPOINT [-o OPTIONS] [-f]: assembles the array and
// serves it as MOUNTPOINT/<mount.image>. Also called by mount(8) for
// `mount -t r5cfs CONFIG DIR` and fstab lines.
#include <limits.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <cstring>

#include "base/log.h"
#include "config/config.h"
#include "control/admin.h"
#include "control/server.h"
#include "engine/engine.h"
#include "fuse/session.h"

namespace {

// Options mount(8) and fstab may hand us: the ones FUSE understands are passed
// on, the generic ones that mean nothing for a FUSE mount are accepted quietly.
const std::vector<std::string> kPassed = {"allow_other", "default_permissions", "nodev", "dev", "nosuid", "suid",
                                          "noexec", "exec", "noatime", "atime", "relatime", "sync", "async", "dirsync"};
const std::vector<std::string> kIgnored = {"rw", "defaults", "auto", "noauto", "user", "nouser", "users", "_netdev", "nofail"};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Serve an r5cfs RAID5/6 array as one image file in MOUNTPOINT (see mount.r5cfs(8))", "mount.r5cfs"};
  std::string config_path, mountpoint;
  std::vector<std::string> options;
  bool foreground = false, verbose = false, ignored_flag = false;
  app.add_option("config", config_path, "Array configuration file (r5cfs.toml(5))")->required();
  app.add_option("mountpoint", mountpoint, "Existing directory to mount on")->required();
  app.add_option("-o", options, "Comma-separated mount options: ro, drain, force, foreground, verbose, "
                                "allow_other, default_permissions, nodev, nosuid, noexec (mount(8) generic options are accepted)")
      ->delimiter(',')
      ->allow_extra_args(false);  // one value per -o, so positionals may follow
  app.add_flag("-f,--foreground", foreground, "Stay in the foreground and log to stderr");
  app.add_flag("-v,--verbose", verbose, "Log debug messages");
  app.add_flag("-n,-s", ignored_flag, "Accepted for mount(8) compatibility; no effect");
  app.set_version_flag("--version", "mount.r5cfs 0.1.0");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  r5::log::set_ident("mount.r5cfs");
  // libfuse changes to "/" when it detaches (even in the foreground), so a
  // relative mount point would later name another directory at unmount.
  char resolved[PATH_MAX];
  if (realpath(mountpoint.c_str(), resolved) == nullptr) {
    r5::log::error("mount point {}: {}", mountpoint, std::strerror(errno));
    return 1;
  }
  mountpoint = resolved;

  r5::fuse::MountOptions mount_options;
  r5::engine::Engine::OpenOptions open_options;
  bool drain = false;
  mount_options.foreground = foreground;
  for (const std::string& o : options) {
    if (o == "ro") {
      mount_options.read_only = true;
    } else if (o == "foreground") {
      mount_options.foreground = true;
    } else if (o == "verbose") {
      verbose = true;
    } else if (o == "drain") {
      drain = true;
    } else if (o == "force") {
      open_options.force = true;
    } else if (std::find(kPassed.begin(), kPassed.end(), o) != kPassed.end()) {
      mount_options.fuse_options.push_back(o);
    } else if (std::find(kIgnored.begin(), kIgnored.end(), o) == kIgnored.end() && o.rfind("x-", 0) != 0) {
      r5::log::error("unknown mount option '{}' (see mount.r5cfs(8))", o);
      return 1;
    }
  }
  r5::log::set_verbose(verbose);

  auto cfg = r5::config::load(config_path);
  if (!cfg.ok()) {
    r5::log::error("{}", cfg.error().message);
    return 1;
  }
  // Before anything touches a member: a second daemon for this array stops here.
  auto control = r5::control::Server::bind(cfg->mount.control);
  if (!control.ok()) {
    r5::log::error("{}", control.error().message);
    return 2;
  }
  open_options.read_only = mount_options.read_only;
  auto engine = r5::engine::Engine::open(*cfg, open_options);
  if (!engine.ok()) {
    r5::log::error("{}", engine.error().message);
    // A config that does not fit the members is a usage error; the rest are array problems.
    return engine.error().kind == r5::ErrorKind::kInvalid ? 1 : 2;
  }
  r5::engine::Engine& array = **engine;
  r5::control::Server& server = **control;
  mount_options.on_started = [&] {
    server.start([&](const nlohmann::json& request) { return r5::control::handle_request(array, request); });
  };
  r5::Status served = r5::fuse::serve(array, mountpoint, mount_options);
  if (!served.ok()) r5::log::error("{}", served.error().message);
  server.refuse_requests();  // those in flight (a drain) finish first
  r5::Status closed = (*engine)->close(drain);
  engine->reset();  // closes the devices and releases their locks
  server.stop();    // only now may another process assemble the array
  if (!closed.ok()) {
    r5::log::error("clean shutdown failed: {}", closed.error().message);
    return 2;
  }
  r5::log::info("array '{}' shut down cleanly", cfg->array.name);
  return served.ok() ? 0 : 2;
}
