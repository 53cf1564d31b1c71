// Metadata callbacks: the root directory and the one image file.
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include "fuse/session.h"

namespace r5::fuse {
namespace {
constexpr double kTimeout = 1.0;
}

void fill_attr(const State& state, fuse_ino_t ino, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = ino;
  st->st_uid = state.uid;
  st->st_gid = state.gid;
  st->st_atim = st->st_mtim = st->st_ctim = state.mount_time;
  if (ino == FUSE_ROOT_ID) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
  } else {
    st->st_mode = S_IFREG | (state.read_only ? 0400 : 0600);
    st->st_nlink = 1;
    st->st_size = off_t(state.engine->capacity());
    st->st_blocks = blkcnt_t(state.engine->capacity() / 512);
    st->st_blksize = kMaxRequest;
  }
}

void reply_status(fuse_req_t req, const Status& st) { fuse_reply_err(req, st.ok() ? 0 : st.error().err); }

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  State& s = state_of(req);
  if (parent != FUSE_ROOT_ID || s.image_name != name) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_entry_param e{};
  e.ino = kImageIno;
  e.generation = 1;
  e.attr_timeout = kTimeout;
  e.entry_timeout = kTimeout;
  fill_attr(s, kImageIno, &e.attr);
  fuse_reply_entry(req, &e);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  if (ino != FUSE_ROOT_ID && ino != kImageIno) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat st;
  fill_attr(state_of(req), ino, &st);
  fuse_reply_attr(req, &st, kTimeout);
}

// The image has the array's size; mode, owner and times are not stored.
void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  State& s = state_of(req);
  if ((to_set & FUSE_SET_ATTR_SIZE) && (ino != kImageIno || uint64_t(attr->st_size) != s.engine->capacity())) {
    fuse_reply_err(req, EPERM);
    return;
  }
  struct stat st;
  fill_attr(s, ino, &st);
  fuse_reply_attr(req, &st, kTimeout);
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino != FUSE_ROOT_ID) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  fuse_reply_open(req, fi);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  if (ino != FUSE_ROOT_ID) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  State& s = state_of(req);
  struct Entry {
    const char* name;
    fuse_ino_t ino;
    mode_t mode;
  } entries[] = {{".", FUSE_ROOT_ID, S_IFDIR}, {"..", FUSE_ROOT_ID, S_IFDIR}, {s.image_name.c_str(), kImageIno, S_IFREG}};
  std::vector<char> buf(size);
  size_t used = 0;
  for (off_t i = off; i < off_t(std::size(entries)); ++i) {
    struct stat st {};
    st.st_ino = entries[i].ino;
    st.st_mode = entries[i].mode;
    size_t need = fuse_add_direntry(req, buf.data() + used, size - used, entries[i].name, &st, i + 1);
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs sv {};
  sv.f_bsize = sv.f_frsize = 4096;
  sv.f_blocks = fsblkcnt_t(state_of(req).engine->capacity() / 4096);
  sv.f_files = 2;
  sv.f_namemax = 255;
  fuse_reply_statfs(req, &sv);
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino != kImageIno) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  if (state_of(req).read_only && (fi->flags & O_ACCMODE) != O_RDONLY) {
    fuse_reply_err(req, EROFS);
    return;
  }
  // Only this daemon changes the image, so the kernel's cached pages stay valid.
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

// close(2) promises nothing about durability; fsync does.
void op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

}  // namespace r5::fuse
