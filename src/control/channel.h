// The control protocol between r5cfs(8) and a mounted array's daemon: one
// UNIX stream socket per array (mount.control), requests and replies as one
// JSON object per line. A request names an "op"; a reply has "ok" and either
// the op's fields or "error" (a message) and "exit" (the exit code r5cfs
// should return, r5cfs(8) EXIT STATUS).
#pragma once

#include <sys/un.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "base/unique_fd.h"

namespace r5::control {

using nlohmann::json;

// Lines longer than this are refused (a reply holds a few KiB of status).
inline constexpr size_t kMaxMessage = 1 << 20;

// The address of a socket file; kInvalid when the path is too long.
Result<sockaddr_un> socket_address(const std::filesystem::path& path);

// Connects to a daemon's socket. kNotFound when no daemon listens there (no
// socket file, or a stale one nobody accepts on).
Result<UniqueFd> connect_to(const std::filesystem::path& path);

Status send_message(int fd, const json& message);
// Reads one line; kNotFound at a clean end of stream before any byte.
Result<json> receive_message(int fd);

// Sends a request and waits for its reply.
Result<json> call(int fd, const json& request);

}  // namespace r5::control
