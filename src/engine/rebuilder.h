// The rebuild of a failed slot onto a new member (r5cfs replace): a thread
// that walks the rows not yet rebuilt (RaidArray::rebuild_rows) while the
// array serves I/O, paced to array.sync_speed_max, records its position in
// the member superblocks every few seconds (so it resumes after a crash or a
// remount) and, at the end, makes the new member active.
#pragma once

#include <string>

#include "array/raid_array.h"
#include "engine/background_job.h"

namespace r5::engine {

class Rebuilder : public BackgroundJob {
 public:
  using State = JobState;

  struct Progress {
    State state = State::kIdle;
    uint32_t slot = 0;
    std::string path;
    uint64_t start_row = 0;           // where this run began
    uint64_t next_row = 0, rows = 0;  // rows [0, next_row) are on the new member
    uint64_t bytes = 0;               // array data rebuilt this run
    double seconds = 0;
    std::string error;
  };

  Rebuilder(array::RaidArray& array, uint64_t speed_max, std::string array_name);
  ~Rebuilder() { stop(); }

  // Runs the rebuild MemberSet has under way, from its position. After
  // stop() the position is recorded and the rebuild resumes at the next start().
  Status start();
  Progress progress() const;

 private:
  void run();

  array::RaidArray& array_;
  const std::string name_;
  Progress progress_;  // guarded by mu_
};

}  // namespace r5::engine
