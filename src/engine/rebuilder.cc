#include "engine/rebuilder.h"

#include "base/log.h"

namespace r5::engine {

namespace {
constexpr auto kSaveInterval = std::chrono::seconds(5);
constexpr uint64_t kBatchBytes = 1 << 20;  // per member and batch: large sequential I/O
constexpr int kRetries = 8;                // batches redone after a member failed on the way
}  // namespace

Rebuilder::Rebuilder(array::RaidArray& array, uint64_t speed_max, std::string array_name)
    : BackgroundJob(speed_max), array_(array), name_(std::move(array_name)) {}

Status Rebuilder::start() {
  array::MemberSet& members = array_.members();
  std::lock_guard life(life_mu_);
  std::lock_guard lock(mu_);
  if (progress_.state == State::kRunning) return Error{ErrorKind::kBusy, EBUSY, "a rebuild is running already"};
  if (members.rebuild_slot() == array::MemberSet::kNoRebuild) return invalid("no rebuild is under way");
  progress_ = Progress{};
  progress_.state = State::kRunning;
  progress_.slot = members.rebuild_slot();
  progress_.path = members.rebuild_path();
  progress_.rows = members.geometry().rows;
  progress_.next_row = progress_.start_row = members.rebuild_row();
  log::info("rebuild of slot {} of array '{}' onto {} started at row {} of {}", progress_.slot, name_, progress_.path,
            progress_.next_row, progress_.rows);
  launch([this] { run(); });
  return {};
}

Rebuilder::Progress Rebuilder::progress() const {
  std::lock_guard lock(mu_);
  Progress p = progress_;
  if (p.state == State::kRunning) {
    p.seconds = seconds();
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
      if (pace(lock, bytes)) {
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
  progress_.seconds = seconds();
  if (end == State::kFailed)
    log::error("rebuild of slot {} of array '{}' failed at row {}: {}", progress_.slot, name_, progress_.next_row, error);
  else if (end == State::kStopped)
    log::info("rebuild of slot {} of array '{}' stopped at row {} of {}; it resumes at the next mount", progress_.slot,
              name_, progress_.next_row, progress_.rows);
  else
    log::info("rebuild of slot {} of array '{}' complete in {:.1f} s", progress_.slot, name_, progress_.seconds);
}

}  // namespace r5::engine
