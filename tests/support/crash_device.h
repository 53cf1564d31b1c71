// Test devices for crash states. A CrashDevice serves reads from everything
// written to it and records every write and sync, in one order shared by all
// the devices of an array (a CrashLog). From that record, crash_image()
// builds what a device may hold after a power loss at any point: what it had
// synced, plus any subset of the writes not yet synced, one of them possibly
// torn at a 512-byte sector. An ImageDevice then serves such an image to the
// recovery under test.
#pragma once

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "io/device.h"

namespace r5::test {

using Page = std::array<std::byte, 4096>;
// Page index -> content; absent pages read as zeros. Pages are shared and
// never changed in place (a write replaces them), so copying an image, which
// the crash suite does for every state, copies no page.
using Image = std::map<uint64_t, std::shared_ptr<const Page>>;

inline bool same_content(const Image& a, const Image& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const auto& x, const auto& y) { return x.first == y.first && *x.second == *y.second; });
}

inline Status image_read(const Image& img, uint64_t size, const std::string& name, uint64_t offset, std::span<std::byte> buf) {
  if (offset % 4096 || buf.size() % 4096 || offset + buf.size() > size)
    return invalid(fmt::format("{}: read at {} +{} outside or unaligned", name, offset, buf.size()));
  for (size_t i = 0; i < buf.size(); i += 4096) {
    auto it = img.find((offset + i) / 4096);
    if (it == img.end())
      std::memset(buf.data() + i, 0, 4096);
    else
      std::memcpy(buf.data() + i, it->second->data(), 4096);
  }
  return {};
}

inline void image_write(Image& img, uint64_t offset, std::span<const std::byte> buf) {
  for (size_t i = 0; i < buf.size(); i += 4096) {
    auto page = std::make_shared<Page>();
    std::memcpy(page->data(), buf.data() + i, 4096);
    img[(offset + i) / 4096] = std::move(page);
  }
}

struct CrashLog {
  struct Op {
    uint32_t device;
    bool sync;
    uint64_t offset;
    std::vector<std::byte> data;
  };
  std::vector<Op> ops;
};

class CrashDevice final : public io::Device {
 public:
  // `initial`: what the device holds before the first logged operation.
  CrashDevice(std::string name, uint64_t size, uint32_t id, CrashLog* log, Image initial = {})
      : name_(std::move(name)), size_(size), id_(id), log_(log), now_(std::move(initial)) {}
  const std::string& name() const override { return name_; }
  uint64_t size() const override { return size_; }
  Status read(uint64_t offset, std::span<std::byte> buf) override { return image_read(now_, size_, name_, offset, buf); }
  Status write(uint64_t offset, std::span<const std::byte> buf) override {
    if (offset % 4096 || buf.size() % 4096 || offset + buf.size() > size_) return invalid(name_ + ": bad write");
    image_write(now_, offset, buf);
    log_->ops.push_back({id_, false, offset, {buf.begin(), buf.end()}});
    return {};
  }
  Status sync() override {
    log_->ops.push_back({id_, true, 0, {}});
    return {};
  }
  uint32_t id() const { return id_; }

 private:
  std::string name_;
  uint64_t size_;
  uint32_t id_;
  CrashLog* log_;
  Image now_;
};

class ImageDevice final : public io::Device {
 public:
  ImageDevice(std::string name, uint64_t size, Image img) : name_(std::move(name)), size_(size), img_(std::move(img)) {}
  const std::string& name() const override { return name_; }
  uint64_t size() const override { return size_; }
  Status read(uint64_t offset, std::span<std::byte> buf) override { return image_read(img_, size_, name_, offset, buf); }
  Status write(uint64_t offset, std::span<const std::byte> buf) override {
    image_write(img_, offset, buf);
    return {};
  }
  Status sync() override { return {}; }
  const Image& image() const { return img_; }

 private:
  std::string name_;
  uint64_t size_;
  Image img_;
};

// Log indices of device `id`'s writes issued before op `t` and not covered
// by a sync of that device before `t`.
inline std::vector<size_t> pending_writes(const CrashLog& log, uint32_t id, size_t t) {
  std::vector<size_t> pending;
  for (size_t i = 0; i < t; ++i) {
    const CrashLog::Op& op = log.ops[i];
    if (op.device != id) continue;
    if (op.sync)
      pending.clear();
    else
      pending.push_back(i);
  }
  return pending;
}

struct Torn {
  size_t op;        // log index of the torn write
  size_t sectors;   // leading 512-byte sectors that reached the disk
};

// What device `id` holds after a crash just before op `t`: its synced writes,
// and of the pending ones those for which keep(log index) is true, applied in
// issue order; a torn write keeps only its first sectors.
inline Image crash_image(const CrashLog& log, uint32_t id, size_t t, const std::function<bool(size_t)>& keep,
                         std::optional<Torn> torn = {}, const Image& initial = {}) {
  const std::vector<size_t> pending = pending_writes(log, id, t);
  const size_t first_pending = pending.empty() ? t : pending.front();
  Image img = initial;
  for (size_t i = 0; i < t; ++i) {
    const CrashLog::Op& op = log.ops[i];
    if (op.device != id || op.sync) continue;
    if (i >= first_pending && !keep(i)) continue;
    if (torn && torn->op == i) {
      const size_t bytes = std::min(op.data.size(), torn->sectors * 512);
      for (size_t b = 0; b < bytes; b += 512) {
        std::shared_ptr<const Page>& slot = img[(op.offset + b) / 4096];
        auto page = slot ? std::make_shared<Page>(*slot) : std::make_shared<Page>();
        std::memcpy(page->data() + (op.offset + b) % 4096, op.data.data() + b, 512);
        slot = std::move(page);
      }
      continue;
    }
    image_write(img, op.offset, op.data);
  }
  return img;
}

}  // namespace r5::test
