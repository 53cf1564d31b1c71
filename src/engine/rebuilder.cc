#include "engine/rebuilder.h"

#include "base/log.h"

namespace r5::engine {

namespace {
using Clock = std::chrono::steady_clock;
constexpr auto kSaveInterval = std::chrono::seconds(5);
constexpr uint64_t kBatchBytes = 1 << 20;  // per member and batch: large sequential I/O
constexpr int kRetries = 8;                // batches redone after a member failed on the way
}  // namespace

std::string_view Rebuilder::state_name(State s) {
  switch (s) {
    case State::kIdle: return "idle";
    case State::kRunning: return "running";
    case State::kDone: return "done";
    case State::kStopped: return "stopped";
    case State::kFailed: return "failed";
  }
  return "unknown";
}

Rebuilder::Rebuilder(array::RaidArray& array, uint64_t speed_max, std::string array_name)
    : array_(array), speed_max_(speed_max), name_(std::move(array_name)) {}

Rebuilder::~Rebuilder() { stop(); }

Status Rebuilder::start() {
  array::MemberSet& members = array_.members();
  std::lock_guard lock(mu_);
  if (progress_.state == State::kRunning) return Error{ErrorKind::kBusy, EBUSY, "a rebuild is running already"};
  if (members.rebuild_slot() == array::MemberSet::kNoRebuild) return invalid("no rebuild is under way");
  if (thread_.joinable()) thread_.join();
  progress_ = Progress{};
  progress_.state = State::kRunning;
  progress_.slot = members.rebuild_slot();
  progress_.path = members.rebuild_path();
  progress_.rows = members.geometry().rows;
  progress_.next_row = progress_.start_row = members.rebuild_row();
  stop_ = false;
  started_ = Clock::now();
  log::info("rebuild of slot {} of array '{}' onto {} started at row {} of {}", progress_.slot, name_, progress_.path,
            progress_.next_row, progress_.rows);
  thread_ = std::thread([this] { run(); });
  return {};
}

void Rebuilder::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Rebuilder::Progress Rebuilder::progress() const {
  std::lock_guard lock(mu_);
  Progress p = progress_;
  if (p.state == State::kRunning) {
    p.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    p.next_row = array_.members().rebuild_row();
  }
  return p;
}

void Rebuilder::run() {
  array::MemberSet& members = array_.members();
  const geometry::Geometry& g = members.geometry();
  const uint32_t batch = uint32_t(std::max<uint64_t>(1, kBatchBytes / g.chunk_size));
  const uint64_t row_bytes = g.row_data_bytes();
  auto last_save = Clock::now();
  State end = State::kDone;
  std::string error;
  uint64_t bytes = 0;
  int retries = 0;
  for (uint64_t row = members.rebuild_row(); row < g.rows;) {
    {
      std::unique_lock lock(mu_);
      if (speed_max_ > 0) {
        auto due = started_ + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(double(bytes) / double(speed_max_)));
        stop_cv_.wait_until(lock, due, [&] { return stop_; });
      }
      if (stop_) {
        end = State::kStopped;
        break;
      }
    }
    const uint32_t n = uint32_t(std::min<uint64_t>(batch, g.rows - row));
    Status st = array_.rebuild_rows(row, n);
    if (!st.ok() && st.error().kind == ErrorKind::kBusy && ++retries <= kRetries) continue;
    if (!st.ok()) {
      end = State::kFailed;
      error = st.error().message;
      break;
    }
    row += n;
    bytes += n * row_bytes;
    {
      std::lock_guard lock(mu_);
      progress_.bytes = bytes;
    }
    if (Clock::now() - last_save >= kSaveInterval) {
      if (Status s = members.save_rebuild_position(); !s.ok())
        log::warn("rebuild of array '{}': cannot record its position: {}", name_, s.error().message);
      last_save = Clock::now();
    }
  }
  if (end == State::kDone) {
    if (Status st = array_.finish_rebuild(); !st.ok()) {
      end = State::kFailed;
      error = st.error().message;
    }
  } else if (end == State::kStopped) {
    (void)members.save_rebuild_position();
  } else {
    members.abort_rebuild(error);
  }
  std::lock_guard lock(mu_);
  progress_.state = end;
  progress_.error = error;
  progress_.next_row = end == State::kDone ? g.rows : members.rebuild_row();
  progress_.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  if (end == State::kFailed)
    log::error("rebuild of slot {} of array '{}' failed at row {}: {}", progress_.slot, name_, progress_.next_row, error);
  else if (end == State::kStopped)
    log::info("rebuild of slot {} of array '{}' stopped at row {} of {}; it resumes at the next mount", progress_.slot,
              name_, progress_.next_row, progress_.rows);
  else
    log::info("rebuild of slot {} of array '{}' complete in {:.1f} s", progress_.slot, name_, progress_.seconds);
}

}  // namespace r5::engine
