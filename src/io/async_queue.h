// Device operations the caller does not wait for. A FUSE read hands its
// member reads to the queue and returns to the next request; one ring thread
// submits them, reaps their completions and calls each request's callback,
// which replies. Under load many requests then share one submission and one
// wake-up, where a synchronous pread costs each request a sleep, an
// interrupt and a wake-up (fio on a member file here: about 30 µs of CPU per
// 4 KiB read with 16 pread threads, 10 µs through one io_uring).
//
// Only the ring thread touches the ring (IORING_SETUP_SINGLE_ISSUER and
// DEFER_TASKRUN: completions are processed when it waits for them, never
// by interrupting a FUSE worker). Submitters queue their group and wake it
// through an eventfd the ring itself reads.
#pragma once

#include <liburing.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "io/batch.h"

namespace r5::io {

class AsyncQueue {
 public:
  // Called once with every op's status filled in.
  using Done = std::function<void(std::span<IoOp>)>;

  AsyncQueue();  // starts the ring thread (no fork may follow)
  // Waits for every submitted group, then stops the thread.
  ~AsyncQueue();
  AsyncQueue(const AsyncQueue&) = delete;
  AsyncQueue& operator=(const AsyncQueue&) = delete;

  // Starts `ops` and calls `done` once all have completed: on the ring
  // thread, or on this thread before submit returns when an op's device has
  // no file descriptor (tests) or io_uring is unavailable. `done` may block
  // (a failed read is redone synchronously there), which delays the replies
  // of other requests but never loses them.
  void submit(std::vector<IoOp> ops, Done done);
  // Returns once every group submitted before has had its `done` return.
  void wait_idle();

 private:
  struct Group;
  struct Tag {
    Group* group;
    uint32_t index;
  };
  void run();
  void start_ring();
  void queue_sqes(Group* g);
  void submit_queued();
  bool reap();

  io_uring ring_{};
  int wake_fd_ = -1;              // eventfd: a group was queued, or stop
  uint64_t wake_buf_ = 0;         // the ring's read of wake_fd_ lands here
  // The ring thread is awake or a wake-up is on its way: submitters skip the write.
  std::atomic<bool> wake_pending_{false};
  std::mutex mu_;
  std::condition_variable cv_;    // the ring is up (ready_), or in_flight_ reached 0
  bool ready_ = false, ok_ = false, stopping_ = false;
  std::vector<Group*> queued_;    // submitted, not yet in the ring
  // Ring thread only:
  bool wake_armed_ = false;       // the eventfd read is in the ring
  size_t ops_in_ring_ = 0;
  size_t in_flight_ = 0;          // groups submitted whose done has not returned
  std::thread thread_;
};

}  // namespace r5::io
