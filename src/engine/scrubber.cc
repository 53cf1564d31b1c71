#include "engine/scrubber.h"

#include "base/log.h"

namespace r5::engine {

namespace {
constexpr auto kSaveInterval = std::chrono::seconds(5);
}  // namespace

Scrubber::Scrubber(array::RaidArray& array, uint64_t speed_max, std::string array_name)
    : BackgroundJob(speed_max), array_(array), name_(std::move(array_name)) {}

Status Scrubber::start(bool repair, uint64_t from_row) {
  std::lock_guard life(life_mu_);
  std::lock_guard lock(mu_);
  if (progress_.state == State::kRunning)
    return Error{ErrorKind::kBusy, EBUSY,
                 fmt::format("a {} of array '{}' is running already (at row {} of {})",
                             progress_.repair ? "check with repair" : "check", name_, progress_.next_row, progress_.rows)};
  if (array_.members().failed_count() > 0)
    return invalid(fmt::format("array '{}' is degraded: there is no redundancy to check (rebuild it with r5cfs replace)",
                               name_));
  const uint64_t rows = array_.members().geometry().rows;
  progress_ = Progress{};
  progress_.state = State::kRunning;
  progress_.repair = repair;
  progress_.rows = rows;
  progress_.next_row = progress_.start_row = from_row < rows ? from_row : 0;
  log::info("{} of array '{}' started at row {} of {}", repair ? "check with repair" : "check", name_, progress_.next_row, rows);
  launch([this] { run(); });
  return {};
}

Scrubber::Progress Scrubber::progress() const {
  std::lock_guard lock(mu_);
  Progress p = progress_;
  if (p.state == State::kRunning) p.seconds = seconds();
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
  std::optional<array::RaidArray::RepairPass> pass;
  if (progress().repair) pass.emplace(array_);
  std::unique_lock lock(mu_);
  State end = State::kDone;
  while (progress_.next_row < progress_.rows) {
    if (pace(lock, progress_.bytes)) {
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
  }
  progress_.state = end;
  progress_.seconds = seconds();
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
