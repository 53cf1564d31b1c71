#include "array/aligned_buffer.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace r5 {

AlignedBuffer::AlignedBuffer(size_t size) {
  reserve(size);
  if (size_) std::memset(data_.get(), 0, size_);
}

void AlignedBuffer::Free::operator()(std::byte* p) const { std::free(p); }

void AlignedBuffer::reserve(size_t size) {
  if (size <= size_) return;
  size_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) throw std::bad_alloc();
  data_.reset(static_cast<std::byte*>(p));
  size_ = rounded;
}

}  // namespace r5
