// The FUSE ceiling of bench/run: a file server that does nothing. It serves
// one file, array.img, like mount.r5cfs does (same request size, same cache
// flags, same thread pool), but reads return zeros and writes and fsyncs are
// acknowledged without touching anything. fio against it measures what FUSE
// itself costs on this machine, the most r5cfs could reach through it.
//
//   r5cfs-nullfs MOUNTPOINT [SIZE_GIB]   (detaches; umount MOUNTPOINT to stop)
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace {

constexpr fuse_ino_t kImageIno = 2;
constexpr size_t kMaxRequest = 1 << 20;  // as src/fuse/session.h
constexpr const char* kImageName = "array.img";
const char kZeros[kMaxRequest] = {};
uint64_t g_size = 8ull << 30;

void fill_attr(fuse_ino_t ino, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = ino;
  st->st_uid = getuid();
  st->st_gid = getgid();
  if (ino == FUSE_ROOT_ID) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
  } else {
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    st->st_size = off_t(g_size);
    st->st_blocks = blkcnt_t(g_size / 512);
  }
  st->st_blksize = 4096;
}

void op_init(void*, fuse_conn_info* conn) {
  conn->max_write = kMaxRequest;
  conn->max_readahead = kMaxRequest;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (parent != FUSE_ROOT_ID || std::strcmp(name, kImageName) != 0) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_entry_param e{};
  e.ino = kImageIno;
  e.attr_timeout = e.entry_timeout = 3600;
  fill_attr(kImageIno, &e.attr);
  fuse_reply_entry(req, &e);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st;
  fill_attr(ino, &st);
  fuse_reply_attr(req, &st, 3600);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  if (ino != FUSE_ROOT_ID) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  char buf[512];
  size_t used = 0;
  const char* names[] = {".", "..", kImageName};
  const fuse_ino_t inos[] = {FUSE_ROOT_ID, FUSE_ROOT_ID, kImageIno};
  for (off_t i = off; i < 3; ++i) {
    struct stat st;
    fill_attr(inos[i], &st);
    const size_t n = fuse_add_direntry(req, buf + used, std::min(size, sizeof buf) - used, names[i], &st, i + 1);
    if (used + n > std::min(size, sizeof buf)) break;
    used += n;
  }
  fuse_reply_buf(req, buf, used);
}

void op_open(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info*) {
  if (uint64_t(off) >= g_size) size = 0;
  fuse_reply_buf(req, kZeros, std::min({size, kMaxRequest, size_t(g_size - std::min<uint64_t>(g_size, off))}));
}

void op_write(fuse_req_t req, fuse_ino_t, const char*, size_t size, off_t, fuse_file_info*) { fuse_reply_write(req, size); }

void op_ok(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }
void op_fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3 || std::strcmp(argv[1], "--help") == 0) {
    std::fprintf(stderr, "usage: %s MOUNTPOINT [SIZE_GIB]\nServes a no-op array.img (reads zeros, writes discarded).\n",
                 argv[0]);
    return argc == 2 ? 0 : 1;
  }
  if (argc == 3) g_size = std::strtoull(argv[2], nullptr, 10) << 30;
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.getattr = op_getattr;
  ops.opendir = op_open;
  ops.releasedir = op_ok;
  ops.readdir = op_readdir;
  ops.open = op_open;
  ops.release = op_ok;
  ops.flush = op_ok;
  ops.read = op_read;
  ops.write = op_write;
  ops.fsync = op_fsync;

  char prog[] = "r5cfs-nullfs", o[] = "-o", opts[] = "fsname=r5cfs-nullfs,subtype=r5cfs-nullfs";
  char* args_v[] = {prog, o, opts};
  fuse_args args = FUSE_ARGS_INIT(3, args_v);
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, nullptr);
  if (!se || fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, argv[1]) != 0) {
    std::fprintf(stderr, "r5cfs-nullfs: cannot mount on %s\n", argv[1]);
    return 1;
  }
  fuse_daemonize(0);
  // The same thread pool as mount.r5cfs (src/fuse/session.cc).
  fuse_loop_config* loop = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(loop, 16);
  fuse_loop_cfg_set_idle_threads(loop, 8);
  const int rc = fuse_session_loop_mt(se, loop);
  fuse_loop_cfg_destroy(loop);
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  fuse_opt_free_args(&args);
  return rc < 0 ? 1 : 0;
}
