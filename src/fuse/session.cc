#include "fuse/session.h"

#include <unistd.h>

#include <cstring>
#include <memory>

#include "base/log.h"

namespace r5::fuse {
namespace {

fuse_lowlevel_ops make_operations() {
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.statfs = op_statfs;
  ops.open = op_open;
  ops.release = op_release;
  ops.flush = op_flush;
  ops.read = op_read;
  ops.write = op_write;
  ops.fsync = op_fsync;
  ops.fallocate = op_fallocate;
  return ops;
}

struct SessionDeleter {
  void operator()(fuse_session* se) const { fuse_session_destroy(se); }
};

}  // namespace

Status serve(engine::Engine& engine, const std::string& mountpoint, const MountOptions& options) {
  State state;
  state.engine = &engine;
  state.image_name = engine.config().mount.image;
  state.uid = getuid();
  state.gid = getgid();
  clock_gettime(CLOCK_REALTIME, &state.mount_time);
  state.read_only = options.read_only;
  state.on_started = options.on_started;

  std::string opts = fmt::format("fsname=r5cfs:{},subtype=r5cfs", engine.config().array.name);
  for (const std::string& o : options.fuse_options) opts += "," + o;
  if (options.read_only) opts += ",ro";
  std::vector<std::string> argv_storage = {"mount.r5cfs", "-o", opts};
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(int(argv.size()), argv.data());
  // fuse_session_new() replaces the argument vector with a heap copy.
  struct FreeArgs {
    fuse_args* args;
    ~FreeArgs() { fuse_opt_free_args(args); }
  } free_args{&args};

  const fuse_lowlevel_ops ops = make_operations();
  std::unique_ptr<fuse_session, SessionDeleter> se(fuse_session_new(&args, &ops, sizeof ops, &state));
  if (!se) return invalid(fmt::format("cannot start a FUSE session with options '{}'", opts));
  if (fuse_set_signal_handlers(se.get()) != 0) return io_error(EIO, "cannot install signal handlers");
  if (fuse_session_mount(se.get(), mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se.get());
    return io_error(EIO, fmt::format("cannot mount on {} (does it exist, and is /dev/fuse usable?)", mountpoint));
  }
  if (!options.foreground) log::use_syslog("mount.r5cfs");
  fuse_daemonize(options.foreground ? 1 : 0);
  log::info("serving /{} on {}", state.image_name, mountpoint);

  fuse_loop_config* loop = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(loop, 16);
  fuse_loop_cfg_set_idle_threads(loop, 8);
  int rc = fuse_session_loop_mt(se.get(), loop);
  fuse_loop_cfg_destroy(loop);
  engine.wait_async_reads();  // their replies need the session
  fuse_session_unmount(se.get());
  fuse_remove_signal_handlers(se.get());
  log::info("unmounted {}", mountpoint);
  if (rc < 0) return io_error(-rc, fmt::format("FUSE loop ended with an error: {}", std::strerror(-rc)));
  return {};
}

}  // namespace r5::fuse
