// The parity check (r5cfs check): walks every row of the array, comparing
// P (and Q) with the data while the array is in use, and optionally repairs
// (RaidArray::check_row). Runs on a thread of its own, paced to
// array.sync_speed_max, and records its position in the member superblocks
// every few seconds, so an interrupted check (stopped, unmounted, crashed)
// resumes where it was.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "array/raid_array.h"
#include "engine/background_job.h"

namespace r5::engine {

class Scrubber : public BackgroundJob {
 public:
  using State = JobState;

  struct Progress {
    State state = State::kIdle;
    bool repair = false;
    uint64_t start_row = 0;           // where this run began
    uint64_t next_row = 0, rows = 0;  // rows [0, next_row) are behind it
    uint64_t rows_checked = 0;        // this run (rows of a degraded array are skipped: nothing to compare)
    uint64_t mismatches = 0, repaired = 0;
    std::vector<uint64_t> mismatch_rows;  // the first kMaxListed
    uint64_t bytes = 0;                   // array data covered this run
    double seconds = 0;
    std::string error;
  };
  static constexpr size_t kMaxListed = 100;

  // speed_max: bytes of array data per second; 0 = unpaced.
  Scrubber(array::RaidArray& array, uint64_t speed_max, std::string array_name);
  ~Scrubber() { stop(); }

  // Starts at `from_row`. kBusy while a check runs. stop() keeps the
  // position recorded.
  Status start(bool repair, uint64_t from_row);
  Progress progress() const;

 private:
  void run();
  // Records the position (or none) in the superblocks.
  void save_position(bool finished);

  array::RaidArray& array_;
  const std::string name_;
  Progress progress_;  // guarded by mu_
};

}  // namespace r5::engine
