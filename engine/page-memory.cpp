#include "page-memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

namespace hearth {

page_memory::page_memory(size_t bytes) : size_(bytes) {
    if (bytes == 0) return;
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        const int err = errno;
        std::string msg = "cannot reserve ";
        msg.append(std::to_string(bytes)).append(" bytes for the KV cache: ").append(std::strerror(err));
        throw std::runtime_error(msg);
    }
    data_ = static_cast<uint8_t*>(p);
    // Small pages only: with transparent huge pages set to "always", the first token of a sequence
    // would make 2 MiB resident and residency would no longer follow what is written. (Advice
    // only: a kernel without THP refuses it, which changes nothing.)
    ::madvise(data_, size_, MADV_NOHUGEPAGE);
}

page_memory::~page_memory() {
    if (data_) ::munmap(data_, size_);
}

page_memory::page_memory(page_memory&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

page_memory& page_memory::operator=(page_memory&& other) noexcept {
    if (this != &other) {
        if (data_) ::munmap(data_, size_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

size_t page_memory::page_size() {
    static const size_t size = [] {
        const long s = ::sysconf(_SC_PAGESIZE);
        return s > 0 ? static_cast<size_t>(s) : size_t{4096};
    }();
    return size;
}

size_t page_memory::release(size_t offset, size_t length) {
    if (!data_ || offset >= size_) return 0;
    const size_t end = length > size_ - offset ? size_ : offset + length;
    const size_t page = page_size();
    const size_t first = (offset + page - 1) / page * page;  // the mapping itself is page-aligned
    const size_t last = end == size_ ? end : end / page * page;  // the tail page of the mapping is ours whole
    if (last <= first) return 0;
    // MADV_DONTNEED on private anonymous memory drops the pages at once; they come back as zero
    // pages on the next touch. Failure (not expected for our own mapping) only keeps them resident.
    if (::madvise(data_ + first, last - first, MADV_DONTNEED) != 0) return 0;
    return last - first;
}

}  // namespace hearth
