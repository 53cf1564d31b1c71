#include "control/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"

namespace r5::control {

namespace fs = std::filesystem;

Server::Server(fs::path path, UniqueFd listener, UniqueFd wake_read, UniqueFd wake_write)
    : path_(std::move(path)),
      listener_(std::move(listener)),
      wake_read_(std::move(wake_read)),
      wake_write_(std::move(wake_write)) {}

Server::~Server() { stop(); }

Result<std::unique_ptr<Server>> Server::bind(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return io_error(ec.value(), fmt::format("control socket folder {}: {}", path.parent_path().native(), ec.message()));

  // Someone answering means the array is mounted already; a refused
  // connection means a socket file left behind by a daemon that died.
  Result<UniqueFd> existing = connect_to(path);
  if (existing.ok())
    return Error{ErrorKind::kBusy, EBUSY,
                 fmt::format("{}: a daemon is already serving this array (is it mounted already?)", path.native())};
  if (fs::is_socket(fs::symlink_status(path, ec))) {
    log::warn("{}: replacing the control socket of a daemon that is gone", path.native());
    fs::remove(path, ec);
  }

  R5_ASSIGN_OR_RETURN(sockaddr_un addr, socket_address(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return io_error(errno, fmt::format("socket: {}", std::strerror(errno)));
  // Created 0600 from the start (no window in which others could connect);
  // no other thread runs yet, so changing the umask is safe.
  mode_t old_mask = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::umask(old_mask);
  if (rc != 0) return io_error(err, fmt::format("control socket {}: {}", path.native(), std::strerror(err)));
  if (::listen(fd.get(), 16) != 0) return io_error(errno, fmt::format("listen on {}: {}", path.native(), std::strerror(errno)));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return io_error(errno, fmt::format("pipe: {}", std::strerror(errno)));
  return std::unique_ptr<Server>(new Server(path, std::move(fd), UniqueFd(pipe_fds[0]), UniqueFd(pipe_fds[1])));
}

void Server::start(Handler handler) {
  handler_ = std::move(handler);
  acceptor_ = std::thread([this] { accept_loop(); });
}

void Server::accept_loop() {
  for (;;) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      log::error("control socket {}: poll: {}; administration through it has stopped", path_.native(), std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!client.valid()) continue;  // the peer went away before we accepted
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(client.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) continue;
    std::lock_guard lock(mu_);
    if (stopping_) return;
    reap_locked();
    Connection& c = connections_.emplace_back();
    c.fd = std::move(client);
    c.thread = std::thread([this, &c, uid = cred.uid] {
      serve(c.fd.get(), uid);
      c.done = true;
    });
  }
}

void Server::reap_locked() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (!it->done) {
      ++it;
      continue;
    }
    it->thread.join();
    it = connections_.erase(it);
  }
}

void Server::serve(int fd, uid_t uid) {
  // The socket file is 0600 already; this also covers a socket whose mode an
  // admin loosened. The refusal answers the first request, so the client
  // reads it instead of finding the connection closed under its send.
  const bool allowed = uid == 0 || uid == ::geteuid();
  for (;;) {
    Result<json> request = receive_message(fd);
    if (!request.ok()) {
      if (request.error().kind != ErrorKind::kNotFound)
        (void)send_message(fd, {{"ok", false}, {"error", request.error().message}, {"exit", 1}});
      return;
    }
    if (!allowed) {
      log::warn("control socket {}: refused a request from uid {} (only root may administer the array)", path_.native(), uid);
      (void)send_message(fd, {{"ok", false}, {"error", "permission denied: only root may administer the array"}, {"exit", 2}});
      return;
    }
    {
      std::lock_guard lock(mu_);
      if (refusing_) {
        (void)send_message(fd, {{"ok", false}, {"error", "the array is being unmounted"}, {"exit", 2}});
        return;
      }
      ++in_flight_;
    }
    json reply;
    try {
      reply = handler_(*request);
    } catch (const std::exception& e) {  // a malformed request (wrong field type)
      reply = {{"ok", false}, {"error", fmt::format("bad request: {}", e.what())}, {"exit", 1}};
    }
    {
      std::lock_guard lock(mu_);
      --in_flight_;
    }
    idle_cv_.notify_all();
    if (!send_message(fd, reply).ok()) return;
  }
}

void Server::refuse_requests() {
  std::unique_lock lock(mu_);
  refusing_ = true;
  idle_cv_.wait(lock, [&] { return in_flight_ == 0; });
}

void Server::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (Connection& c : connections_) ::shutdown(c.fd.get(), SHUT_RDWR);
  }
  if (wake_write_.valid()) (void)!::write(wake_write_.get(), "x", 1);
  if (acceptor_.joinable()) acceptor_.join();
  // No new connection after the acceptor ended; wait for requests in flight.
  for (Connection& c : connections_)
    if (c.thread.joinable()) c.thread.join();
  connections_.clear();
  listener_.reset();
  std::error_code ec;
  fs::remove(path_, ec);
}

}  // namespace r5::control
