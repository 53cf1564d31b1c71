// Data callbacks: read, write, fsync, fallocate on the image.
#include <fcntl.h>
#include <linux/falloc.h>

#include <memory>
#include <mutex>
#include <vector>

#include "array/aligned_buffer.h"
#include "base/log.h"
#include "fuse/session.h"

namespace r5::fuse {

void op_init(void* userdata, fuse_conn_info* conn) {
  // The daemon has detached by now, so background threads are safe to start.
  State& state = *static_cast<State*>(userdata);
  state.engine->start_background();
  if (state.on_started) state.on_started();
  conn->max_write = kMaxRequest;
  conn->max_readahead = kMaxRequest;
  // The page cache must not hold writes back from us: a reply means the
  // engine has the data, which the durability promises build on.
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  // Asynchronous direct I/O (aio, io_uring) reaches us as background
  // requests, of which the kernel lets only max_background (12 by default)
  // be in flight: a queue depth of 16 then waits in io_submit.
  conn->max_background = kMaxBackground;
  conn->congestion_threshold = kMaxBackground * 3 / 4;
  log::debug("FUSE protocol {}.{}: max_write {}, max_readahead {}, async dio {}", conn->proto_major, conn->proto_minor,
             conn->max_write, conn->max_readahead, (conn->want & FUSE_CAP_ASYNC_DIO) ? "on" : "off");
}

namespace {

// Buffers of reads in flight: a read replies from the ring thread, after its
// FUSE worker moved on, so the buffer is the request's, not the thread's.
// Released ones are kept for the next reads (a 1 MiB buffer freshly
// allocated costs 256 page faults), at most kKeep of them.
class ReadBuffers {
 public:
  std::unique_ptr<AlignedBuffer> take(size_t size) {
    std::unique_ptr<AlignedBuffer> b;
    {
      std::lock_guard lock(mu_);
      if (!free_.empty()) {
        b = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (!b) b = std::make_unique<AlignedBuffer>();
    b->reserve(size);
    return b;
  }
  void give_back(std::unique_ptr<AlignedBuffer> b) {
    std::lock_guard lock(mu_);
    if (free_.size() < kKeep) free_.push_back(std::move(b));
  }

 private:
  static constexpr size_t kKeep = 16;
  std::mutex mu_;
  std::vector<std::unique_ptr<AlignedBuffer>> free_;
};

ReadBuffers read_buffers;

}  // namespace

void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info*) {
  engine::Engine& engine = *state_of(req).engine;
  const uint64_t cap = engine.capacity();
  if (off < 0 || uint64_t(off) >= cap) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  size = size_t(std::min<uint64_t>(size, cap - uint64_t(off)));
  AlignedBuffer* buffer = read_buffers.take(size).release();
  engine.read_async(uint64_t(off), {buffer->data(), size}, [req, off, size, buffer](Status st) {
    if (st.ok()) {
      fuse_reply_buf(req, reinterpret_cast<const char*>(buffer->data()), size);
    } else {
      log::error("read at {} (+{}): {}", off, size, st.error().message);
      reply_status(req, st);
    }
    read_buffers.give_back(std::unique_ptr<AlignedBuffer>(buffer));
  });
}

void op_write(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off, fuse_file_info*) {
  State& s = state_of(req);
  const uint64_t cap = s.engine->capacity();
  if (s.read_only) {
    fuse_reply_err(req, EROFS);
    return;
  }
  if (off < 0 || uint64_t(off) >= cap) {
    fuse_reply_err(req, off < 0 ? EINVAL : ENOSPC);
    return;
  }
  size = size_t(std::min<uint64_t>(size, cap - uint64_t(off)));
  Status st = s.engine->write(uint64_t(off), {reinterpret_cast<const std::byte*>(buf), size});
  if (!st.ok()) {
    log::error("write at {} (+{}): {}", off, size, st.error().message);
    reply_status(req, st);
    return;
  }
  fuse_reply_write(req, size);
}

void op_fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  Status st = state_of(req).engine->fsync();
  if (!st.ok()) log::error("fsync: {}", st.error().message);
  reply_status(req, st);
}

// The loop driver sends PUNCH_HOLE for discards and ZERO_RANGE for write-zeroes;
// both become zeros on the array. Plain allocation is a no-op: every byte exists.
void op_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length, fuse_file_info*) {
  State& s = state_of(req);
  const uint64_t cap = s.engine->capacity();
  if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
    fuse_reply_err(req, EOPNOTSUPP);
    return;
  }
  if (offset < 0 || length <= 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  uint64_t end = uint64_t(offset) + uint64_t(length);
  if (end > cap && !(mode & FALLOC_FL_KEEP_SIZE)) {
    fuse_reply_err(req, EFBIG);  // the image cannot grow
    return;
  }
  end = std::min(end, cap);
  if (!(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) || uint64_t(offset) >= end) {
    fuse_reply_err(req, 0);
    return;
  }
  if (s.read_only) {
    fuse_reply_err(req, EROFS);
    return;
  }
  Status st = s.engine->write_zeros(uint64_t(offset), end - uint64_t(offset));
  if (!st.ok()) log::error("fallocate at {} (+{}): {}", offset, length, st.error().message);
  reply_status(req, st);
}

}  // namespace r5::fuse
