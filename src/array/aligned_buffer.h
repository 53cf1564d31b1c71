// Page-aligned heap memory for O_DIRECT member I/O and ISA-L.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

namespace r5 {

class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 4096;
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t size);  // zero-filled

  std::byte* data() { return data_.get(); }
  const std::byte* data() const { return data_.get(); }
  size_t size() const { return size_; }
  std::span<std::byte> span() { return {data_.get(), size_}; }
  // Grows (never shrinks) to at least `size`; contents are not kept.
  void reserve(size_t size);

 private:
  struct Free {
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte, Free> data_;
  size_t size_ = 0;
};

}  // namespace r5
