// The rebuild of a failed slot onto a new member (r5cfs replace): a thread
// that walks the rows not yet rebuilt (RaidArray::rebuild_rows) while the
// array serves I/O, paced to array.sync_speed_max, records its position in
// the member superblocks every few seconds (so it resumes after a crash or a
// remount) and, at the end, makes the new member active.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "array/raid_array.h"

namespace r5::engine {

class Rebuilder {
 public:
  enum class State { kIdle, kRunning, kDone, kStopped, kFailed };
  static std::string_view state_name(State s);

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
  ~Rebuilder();

  // Runs the rebuild MemberSet has under way, from its position.
  Status start();
  // Stops and waits; the position is recorded, the rebuild resumes at the next start().
  void stop();
  Progress progress() const;

 private:
  void run();

  array::RaidArray& array_;
  const uint64_t speed_max_;
  const std::string name_;
  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;  // guarded by mu_
  Progress progress_;  // guarded by mu_
  std::chrono::steady_clock::time_point started_;
  std::thread thread_;
};

}  // namespace r5::engine
