#include "control/channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace r5::control {

Result<sockaddr_un> socket_address(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof addr.sun_path) return invalid(fmt::format("{}: socket path too long", path.native()));
  std::memcpy(addr.sun_path, path.c_str(), path.native().size());
  return addr;
}

Result<UniqueFd> connect_to(const std::filesystem::path& path) {
  R5_ASSIGN_OR_RETURN(sockaddr_un addr, socket_address(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return io_error(errno, fmt::format("socket: {}", std::strerror(errno)));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    std::string message = fmt::format("{}: {}", path.native(), std::strerror(err));
    if (err == ENOENT || err == ECONNREFUSED) return not_found(std::move(message));
    return io_error(err, std::move(message));
  }
  return fd;
}

Status send_message(int fd, const json& message) {
  std::string line = message.dump() + "\n";
  for (size_t done = 0; done < line.size();) {
    ssize_t n = ::send(fd, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error(errno, fmt::format("control socket: {}", std::strerror(errno)));
    }
    done += size_t(n);
  }
  return {};
}

Result<json> receive_message(int fd) {
  // Byte by byte up to the newline: messages are small and rare, and the
  // next message must stay in the socket for the next call.
  std::string line;
  for (;;) {
    char c;
    ssize_t n = ::recv(fd, &c, 1, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error(errno, fmt::format("control socket: {}", std::strerror(errno)));
    }
    if (n == 0) {
      if (line.empty()) return not_found("control socket closed");
      return io_error(EPROTO, "control socket closed in the middle of a message");
    }
    if (c == '\n') break;
    if (line.size() >= kMaxMessage) return io_error(EPROTO, "control message too long");
    line.push_back(c);
  }
  json message = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!message.is_object()) return io_error(EPROTO, "control message is not a JSON object");
  return message;
}

Result<json> call(int fd, const json& request) {
  R5_TRY(send_message(fd, request));
  Result<json> reply = receive_message(fd);
  if (!reply.ok() && reply.error().kind == ErrorKind::kNotFound)
    return io_error(EPROTO, "the daemon closed the control connection without a reply (did it exit?)");
  return reply;
}

}  // namespace r5::control
