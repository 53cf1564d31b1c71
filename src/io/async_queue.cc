#include "io/async_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "base/log.h"
#include "io/uring_op.h"

namespace r5::io {
namespace {

constexpr unsigned kSqEntries = 256;
constexpr unsigned kCqEntries = 4096;
// Ops the ring thread lets into the ring at once; the rest of the groups wait
// in the queue. Below the CQ's size, so completions never overflow it (a
// group, one request, has at most a few hundred ops: 1 MiB in 4 KiB chunks).
constexpr size_t kMaxOpsInRing = kCqEntries - kSqEntries;
constexpr uint64_t kWakeData = 1;  // user_data of the eventfd read (tags are aligned pointers)

}  // namespace

struct AsyncQueue::Group {
  std::vector<IoOp> ops;
  std::vector<Tag> tags;
  Done done;
  size_t pending = 0;  // ops not completed; only the ring thread touches it
};

AsyncQueue::AsyncQueue() {
  thread_ = std::thread([this] { run(); });
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return ready_; });
}

AsyncQueue::~AsyncQueue() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  if (wake_fd_ >= 0) (void)eventfd_write(wake_fd_, 1);
  thread_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void AsyncQueue::submit(std::vector<IoOp> ops, Done done) {
  bool ring = ok_ && !ops.empty();
  for (const IoOp& op : ops) ring = ring && op.device->fd() >= 0;
  if (!ring) {
    for (IoOp& op : ops) op.status = run_sync(op);
    done(ops);
    return;
  }
  auto* g = new Group{std::move(ops), {}, std::move(done), 0};
  {
    std::lock_guard lock(mu_);
    queued_.push_back(g);
    ++in_flight_;
  }
  // One write wakes the ring thread for every group queued until it looks.
  if (!wake_pending_.exchange(true)) (void)eventfd_write(wake_fd_, 1);
}

void AsyncQueue::wait_idle() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return in_flight_ == 0; });
}

void AsyncQueue::start_ring() {
  // The ring belongs to this thread: created here, used only here.
  io_uring_params p{};
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  p.cq_entries = kCqEntries;
  int rc = io_uring_queue_init_params(kSqEntries, &ring_, &p);
  if (rc == -EINVAL) {  // a kernel before 6.1
    p = {};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = kCqEntries;
    rc = io_uring_queue_init_params(kSqEntries, &ring_, &p);
  }
  if (rc < 0) {
    log::warn("io_uring unavailable ({}); reads run synchronously", std::strerror(-rc));
    return;
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    log::warn("eventfd: {}; reads run synchronously", std::strerror(errno));
    io_uring_queue_exit(&ring_);
    return;
  }
  ok_ = true;
}

void AsyncQueue::run() {
  start_ring();
  {
    std::lock_guard lock(mu_);
    ready_ = true;
  }
  cv_.notify_all();
  if (!ok_) return;

  wake_pending_.store(true);  // awake: submitters need not write the eventfd
  for (;;) {
    if (!wake_armed_) {
      io_uring_sqe* sqe;
      while ((sqe = io_uring_get_sqe(&ring_)) == nullptr) submit_queued();
      io_uring_prep_read(sqe, wake_fd_, &wake_buf_, sizeof wake_buf_, 0);
      io_uring_sqe_set_data64(sqe, kWakeData);
      wake_armed_ = true;
    }
    std::vector<Group*> batch;
    bool capped = false;
    {
      std::lock_guard lock(mu_);
      if (stopping_ && in_flight_ == 0) break;
      size_t taken = 0;
      for (Group* g : queued_) {
        if (ops_in_ring_ > 0 && ops_in_ring_ + g->ops.size() > kMaxOpsInRing) break;
        ops_in_ring_ += g->ops.size();
        batch.push_back(g);
        ++taken;
      }
      queued_.erase(queued_.begin(), queued_.begin() + ptrdiff_t(taken));
      capped = !queued_.empty();
    }
    for (Group* g : batch) queue_sqes(g);
    // Submit and take what has completed, without sleeping; while there is
    // work, new groups are picked up without any eventfd write.
    int rc = io_uring_submit_and_get_events(&ring_);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) uring_fatal("io_uring_submit_and_get_events", rc);
    const bool reaped = reap();
    if (!batch.empty() || reaped) continue;
    // Idle, or full (then completions wake us): from here a queued group
    // must wake us. Clear the flag, then look at the queue once more, so a
    // group queued in between is not missed.
    wake_pending_.store(false);
    {
      std::lock_guard lock(mu_);
      if ((!capped && !queued_.empty()) || (stopping_ && in_flight_ == 0)) {
        wake_pending_.store(true);
        continue;
      }
    }
    rc = io_uring_submit_and_wait(&ring_, 1);  // any completion, the eventfd read included
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) uring_fatal("io_uring_submit_and_wait", rc);
    wake_pending_.store(true);
  }
  io_uring_queue_exit(&ring_);  // cancels the eventfd read
}

// Processes every completion there is and calls the done of each group that
// finished. Returns whether there were any.
bool AsyncQueue::reap() {
  io_uring_cqe* cqe = nullptr;
  unsigned head = 0, seen = 0;
  std::vector<Group*> finished;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++seen;
    if (cqe->user_data == kWakeData) {
      wake_armed_ = false;
      continue;
    }
    auto* tag = reinterpret_cast<Tag*>(uintptr_t(cqe->user_data));
    finish_op(tag->group->ops[tag->index], cqe->res);
    --ops_in_ring_;
    if (--tag->group->pending == 0) finished.push_back(tag->group);
  }
  io_uring_cq_advance(&ring_, seen);
  for (Group* g : finished) {
    g->done(g->ops);
    delete g;
  }
  if (!finished.empty()) {
    std::lock_guard lock(mu_);
    in_flight_ -= finished.size();
    if (in_flight_ == 0) cv_.notify_all();
  }
  return seen > 0;
}

void AsyncQueue::queue_sqes(Group* g) {
  g->pending = g->ops.size();
  g->tags.resize(g->ops.size());
  for (uint32_t i = 0; i < g->ops.size(); ++i) {
    g->tags[i] = {g, i};
    io_uring_sqe* sqe;
    while ((sqe = io_uring_get_sqe(&ring_)) == nullptr) submit_queued();
    prep_sqe(sqe, g->ops[i]);
    io_uring_sqe_set_data(sqe, &g->tags[i]);
  }
}

// The SQ is full: hand what it holds to the kernel. When the kernel refuses
// for now (its completions wait to be posted), take those first; a group
// half in the ring is fine, its pending count is set.
void AsyncQueue::submit_queued() {
  int rc = io_uring_submit(&ring_);
  if (rc == -EBUSY || rc == -EAGAIN) {
    (void)io_uring_get_events(&ring_);
    reap();
    return;
  }
  if (rc < 0 && rc != -EINTR) uring_fatal("io_uring_submit", rc);
}

}  // namespace r5::io
