// The daemon's end of the control socket. bind() runs before the array is
// assembled, so a second daemon for the same array is refused before it
// touches a member; start() runs once the daemon has detached (no thread may
// cross its fork). Every connection gets its own thread, so a long request
// (a drain) does not hold up a status.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "control/channel.h"

namespace r5::control {

class Server {
 public:
  using Handler = std::function<json(const json& request)>;

  // Creates the socket file (mode 0600; its folder if missing). A socket
  // left by a dead daemon is replaced; one a live daemon answers on is kBusy.
  static Result<std::unique_ptr<Server>> bind(const std::filesystem::path& path);
  ~Server();  // stop()

  // Serves requests with `handler` from a thread of its own.
  void start(Handler handler);
  // From now on requests are refused ("being unmounted"); waits for those
  // being handled. The socket stays bound, so that nobody assembles the
  // array while the daemon still closes it.
  void refuse_requests();
  // Closes the socket, ends every connection and removes the socket file.
  // Idempotent.
  void stop();

 private:
  Server(std::filesystem::path path, UniqueFd listener, UniqueFd wake_read, UniqueFd wake_write);
  void accept_loop();
  void serve(int fd, uid_t uid);
  void reap_locked();  // joins the threads of closed connections

  const std::filesystem::path path_;
  UniqueFd listener_;
  UniqueFd wake_read_, wake_write_;  // a pipe that wakes accept_loop at stop
  Handler handler_;
  std::thread acceptor_;
  std::mutex mu_;  // guards connections_ and stopping_
  struct Connection {
    UniqueFd fd;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::list<Connection> connections_;
  bool stopping_ = false;
  bool refusing_ = false;   // guarded by mu_
  int in_flight_ = 0;       // requests being handled; guarded by mu_
  std::condition_variable idle_cv_;
};

}  // namespace r5::control
