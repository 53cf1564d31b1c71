// Result<T>: a value or an error (errno + human message). Corruption is a
// distinct kind so callers can tell "the bytes are wrong" from "the device
// failed". No exceptions cross module boundaries; everything returns Result.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace r5 {

enum class ErrorKind { kIo, kCorruption, kInvalid, kNotFound, kBusy };

struct Error {
  ErrorKind kind = ErrorKind::kIo;
  int err = EIO;  // errno to hand to the kernel (FUSE) or the shell
  std::string message;

  // Prepends context ("member m1.img: " + message), keeping kind and errno.
  Error with_context(std::string_view ctx) const {
    return Error{kind, err, fmt::format("{}: {}", ctx, message)};
  }
};

inline Error io_error(int err, std::string message) { return Error{ErrorKind::kIo, err, std::move(message)}; }
inline Error corruption(std::string message) { return Error{ErrorKind::kCorruption, EUCLEAN, std::move(message)}; }
inline Error invalid(std::string message) { return Error{ErrorKind::kInvalid, EINVAL, std::move(message)}; }
inline Error not_found(std::string message) { return Error{ErrorKind::kNotFound, ENOENT, std::move(message)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace r5

// Propagates an error from an expression returning Result<...>.
#define R5_TRY(expr)                          \
  do {                                        \
    auto r5_try_result_ = (expr);             \
    if (!r5_try_result_.ok()) return r5_try_result_.error(); \
  } while (0)

#define R5_CONCAT_INNER(a, b) a##b
#define R5_CONCAT(a, b) R5_CONCAT_INNER(a, b)
// Declares `lhs` from the value of a Result, or returns its error.
#define R5_ASSIGN_OR_RETURN(lhs, expr) R5_ASSIGN_OR_RETURN_IMPL(R5_CONCAT(r5_res_, __LINE__), lhs, expr)
#define R5_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.error();             \
  lhs = std::move(tmp).value()
