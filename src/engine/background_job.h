// What the long background operations (the parity check, a rebuild) share:
// their states, one thread, a stop that wakes them, and pacing to
// array.sync_speed_max.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>

namespace r5::engine {

enum class JobState { kIdle, kRunning, kDone, kStopped, kFailed };
std::string_view job_state_name(JobState s);

class BackgroundJob {
 public:
  using Clock = std::chrono::steady_clock;
  // speed_max: bytes of array data per second; 0 = unpaced.
  explicit BackgroundJob(uint64_t speed_max) : speed_max_(speed_max) {}
  // Derived classes stop() in their destructor: the body uses their members.
  ~BackgroundJob() = default;
  // Asks the running body to stop and waits for it.
  void stop();

 protected:
  // Under life_mu_ and mu_: runs `body` on the job's thread (joining the
  // previous run, which has ended).
  void launch(std::function<void()> body);
  // Under mu_ (`lock`): waits until `bytes` done since launch() are within
  // the pace, or until stop(). True when asked to stop.
  bool pace(std::unique_lock<std::mutex>& lock, uint64_t bytes);
  double seconds() const { return std::chrono::duration<double>(Clock::now() - started_).count(); }

  // Lock order: life_mu_ (starting and stopping the thread), then mu_ (the
  // job's state; the body takes only mu_).
  std::mutex life_mu_;
  mutable std::mutex mu_;
  bool stop_ = false;  // guarded by mu_

 private:
  const uint64_t speed_max_;
  std::condition_variable stop_cv_;
  Clock::time_point started_;
  std::thread thread_;
};

}  // namespace r5::engine
