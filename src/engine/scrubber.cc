#include "engine/scrubber.h"

#include "base/log.h"

namespace r5::engine {

namespace {
using Clock = std::chrono::steady_clock;
constexpr auto kSaveInterval = std::chrono::seconds(5);
}  // namespace

std::string_view Scrubber::state_name(State s) {
  switch (s) {
    case State::kIdle: return "idle";
    case State::kRunning: return "running";
    case State::kDone: return "done";
    case State::kStopped: return "stopped";
    case State::kFailed: return "failed";
  }
  return "unknown";
}

Scrubber::Scrubber(array::RaidArray& array, uint64_t speed_max, std::string array_name)
    : array_(array), speed_max_(speed_max), name_(std::move(array_name)) {}

Scrubber::~Scrubber() { stop(); }

Status Scrubber::start(bool repair, uint64_t from_row) {
  std::lock_guard lock(mu_);
  if (progress_.state == State::kRunning)
    return Error{ErrorKind::kBusy, EBUSY,
                 fmt::format("a {} of array '{}' is running already (at row {} of {})",
                             progress_.repair ? "check with repair" : "check", name_, progress_.next_row, progress_.rows)};
  if (thread_.joinable()) thread_.join();  // the previous run has ended
  const uint64_t rows = array_.members().geometry().rows;
  progress_ = Progress{};
  progress_.state = State::kRunning;
  progress_.repair = repair;
  progress_.rows = rows;
  progress_.next_row = progress_.start_row = from_row < rows ? from_row : 0;
  stop_ = false;
  started_ = Clock::now();
  log::info("{} of array '{}' started at row {} of {}", repair ? "check with repair" : "check", name_, progress_.next_row, rows);
  thread_ = std::thread([this] { run(); });
  return {};
}

void Scrubber::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Scrubber::Progress Scrubber::progress() const {
  std::lock_guard lock(mu_);
  Progress p = progress_;
  if (p.state == State::kRunning) p.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  return p;
}

void Scrubber::save_position(bool finished) {
  std::optional<format::CheckPosition> position;
  {
    std::lock_guard lock(mu_);
    if (!finished) position = format::CheckPosition{progress_.next_row, progress_.repair};
  }
  if (Status st = array_.members().write_check_position(position); !st.ok())
    log::warn("check of array '{}': cannot record its position: {}", name_, st.error().message);
}

void Scrubber::run() {
  const geometry::Geometry& g = array_.members().geometry();
  const uint64_t row_bytes = uint64_t(g.data_count()) * g.chunk_size;
  auto last_save = Clock::now();
  save_position(false);
  std::unique_lock lock(mu_);
  State end = State::kDone;
  while (progress_.next_row < progress_.rows) {
    if (stop_) {
      end = State::kStopped;
      break;
    }
    const uint64_t row = progress_.next_row;
    const bool repair = progress_.repair;
    lock.unlock();
    Result<array::RaidArray::RowCheck> check = array_.check_row(row, repair);
    if (Clock::now() - last_save >= kSaveInterval) {
      save_position(false);
      last_save = Clock::now();
    }
    lock.lock();
    if (!check.ok()) {
      progress_.error = check.error().message;
      end = State::kFailed;
      break;
    }
    if (check->checked) ++progress_.rows_checked;
    if (check->mismatch) {
      ++progress_.mismatches;
      if (progress_.mismatch_rows.size() < kMaxListed) progress_.mismatch_rows.push_back(row);
      log::warn("check of array '{}': row {} parity mismatch{}{}", name_, row,
                check->bad_member ? fmt::format(" (slot {} holds the bad block)", *check->bad_member) : "",
                check->repaired ? ", repaired" : "");
    }
    if (check->repaired) ++progress_.repaired;
    progress_.next_row = row + 1;
    progress_.bytes += row_bytes;
    if (speed_max_ > 0) {
      // Pace: the bytes done so far may not run ahead of speed_max_.
      auto due = started_ + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(double(progress_.bytes) / double(speed_max_)));
      stop_cv_.wait_until(lock, due, [&] { return stop_; });
    }
  }
  progress_.state = end;
  progress_.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  const Progress p = progress_;
  lock.unlock();
  // A completed or failed run leaves nothing to resume; a stopped one does.
  save_position(end != State::kStopped);
  if (end == State::kFailed)
    log::error("check of array '{}' failed at row {}: {}", name_, p.next_row, p.error);
  else
    log::info("check of array '{}' {} at row {} of {}: {} rows checked, {} mismatches, {} repaired", name_,
              end == State::kDone ? "complete" : "stopped", p.next_row, p.rows, p.rows_checked, p.mismatches, p.repaired);
}

}  // namespace r5::engine
