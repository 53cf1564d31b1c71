#include "engine/background_job.h"

namespace r5::engine {

std::string_view job_state_name(JobState s) {
  switch (s) {
    case JobState::kIdle: return "idle";
    case JobState::kRunning: return "running";
    case JobState::kDone: return "done";
    case JobState::kStopped: return "stopped";
    case JobState::kFailed: return "failed";
  }
  return "unknown";
}

void BackgroundJob::launch(std::function<void()> body) {
  if (thread_.joinable()) thread_.join();
  stop_ = false;
  started_ = Clock::now();
  thread_ = std::thread(std::move(body));
}

void BackgroundJob::stop() {
  std::lock_guard life(life_mu_);
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool BackgroundJob::pace(std::unique_lock<std::mutex>& lock, uint64_t bytes) {
  if (speed_max_ > 0) {
    auto due = started_ + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(double(bytes) / double(speed_max_)));
    stop_cv_.wait_until(lock, due, [&] { return stop_; });
  }
  return stop_;
}

}  // namespace r5::engine
