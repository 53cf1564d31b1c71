// Regular files and block devices through pread/pwrite/fdatasync.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "base/unique_fd.h"
#include "io/device.h"

namespace r5::io {
namespace {

Error errno_error(int err, const std::string& what, const std::string& path) {
  return io_error(err, fmt::format("{}: {}: {}", path, what, std::strerror(err)));
}

class PosixDevice final : public Device {
 public:
  PosixDevice(UniqueFd fd, UniqueFd cached_fd, std::string name, uint64_t size)
      : fd_(std::move(fd)), cached_fd_(std::move(cached_fd)), name_(std::move(name)), size_(size) {}

  const std::string& name() const override { return name_; }
  uint64_t size() const override { return size_; }
  int fd() const override { return fd_.get(); }

  Status read(uint64_t offset, std::span<std::byte> buf) override {
    size_t done = 0;
    while (done < buf.size()) {
      ssize_t n = ::pread(fd_.get(), buf.data() + done, buf.size() - done, off_t(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_error(errno, fmt::format("read at {}", offset + done), name_);
      if (n == 0) return io_error(EIO, fmt::format("{}: read at {}: unexpected end of device", name_, offset + done));
      done += size_t(n);
    }
    return {};
  }

  Status write(uint64_t offset, std::span<const std::byte> buf) override { return write_fd(fd_.get(), offset, buf); }

  // fdatasync through fd_ covers these too: dirty pages and write-back
  // errors belong to the file, not to the descriptor. A later O_DIRECT
  // access to the same range first writes the cached pages back.
  Status write_cached(uint64_t offset, std::span<const std::byte> buf) override {
    return write_fd(cached_fd_.valid() ? cached_fd_.get() : fd_.get(), offset, buf);
  }

  Status sync() override {
    if (::fdatasync(fd_.get()) != 0) return errno_error(errno, "fdatasync", name_);
    return {};
  }

 private:
  Status write_fd(int fd, uint64_t offset, std::span<const std::byte> buf) {
    size_t done = 0;
    while (done < buf.size()) {
      ssize_t n = ::pwrite(fd, buf.data() + done, buf.size() - done, off_t(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_error(errno, fmt::format("write at {}", offset + done), name_);
      if (n == 0) return io_error(ENOSPC, fmt::format("{}: write at {}: no progress", name_, offset + done));
      done += size_t(n);
    }
    return {};
  }

  UniqueFd fd_;
  UniqueFd cached_fd_;  // without O_DIRECT, or invalid
  std::string name_;
  uint64_t size_;
};

}  // namespace

Result<std::unique_ptr<Device>> open_file(const std::filesystem::path& path, const OpenOptions& options) {
  const std::string name = path.string();
  int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  if (options.create) flags |= O_CREAT;
  UniqueFd fd(::open(name.c_str(), flags | (options.direct ? O_DIRECT : 0), 0600));
  // Some file systems (older tmpfs, some FUSE) refuse O_DIRECT: use the page cache there.
  if (!fd.valid() && errno == EINVAL && options.direct) fd.reset(::open(name.c_str(), flags, 0600));
  if (!fd.valid()) return errno_error(errno, "open", name);
  // One writer per device across r5cfs processes: a second daemon (or an
  // offline command) on a mounted array's members stops here, whatever its
  // config calls the control socket.
  if (!options.read_only && ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Error{ErrorKind::kBusy, EBUSY, fmt::format("{}: in use by another r5cfs process (is the array mounted?)", name)};
    return errno_error(errno, "lock", name);
  }

  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error(errno, "stat", name);
  uint64_t size = 0;
  if (S_ISBLK(st.st_mode)) {
    if (::ioctl(fd.get(), BLKGETSIZE64, &size) != 0) return errno_error(errno, "BLKGETSIZE64", name);
  } else if (S_ISREG(st.st_mode)) {
    size = uint64_t(st.st_size);
    if (options.create && size == 0 && options.create_size > 0) {
      if (::ftruncate(fd.get(), off_t(options.create_size)) != 0) return errno_error(errno, "set size", name);
      size = options.create_size;
    }
  } else {
    return invalid(fmt::format("{}: not a regular file or block device", name));
  }
  UniqueFd cached_fd;
  if (options.cached_writes && !options.read_only) {
    cached_fd.reset(::open(name.c_str(), O_WRONLY | O_CLOEXEC));
    if (!cached_fd.valid()) return errno_error(errno, "open", name);
  }
  return std::unique_ptr<Device>(new PosixDevice(std::move(fd), std::move(cached_fd), name, size));
}

Status zero_out(Device& device, void (*progress)(uint64_t done, uint64_t total)) {
  const uint64_t size = device.size();
  if (int fd = device.fd(); fd >= 0) {
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, off_t(size)) == 0)
      return device.sync();
    uint64_t range[2] = {0, size};
    if (S_ISBLK(st.st_mode) && ::ioctl(fd, BLKZEROOUT, range) == 0) return device.sync();
  }
  return write_zeros(device, progress);
}

Status write_zeros(Device& device, void (*progress)(uint64_t done, uint64_t total)) {
  const uint64_t size = device.size();
  constexpr size_t kStep = 4 << 20;
  void* mem = std::aligned_alloc(4096, kStep);
  if (mem == nullptr) return io_error(ENOMEM, "out of memory");
  std::memset(mem, 0, kStep);
  Status st;
  for (uint64_t done = 0; done < size && st.ok(); done += kStep) {
    st = device.write(done, {static_cast<const std::byte*>(mem), size_t(std::min<uint64_t>(kStep, size - done))});
    if (progress && (done / kStep) % 64 == 0) progress(done, size);
  }
  std::free(mem);
  R5_TRY(st);
  if (progress) progress(size, size);
  return device.sync();
}

}  // namespace r5::io
