// Anonymous memory reserved up front and made resident page by page as it is written, so a KV
// cache sized for every slot at full context costs only what the sequences actually hold, and
// pages of a sequence that is no longer needed can go back to the OS.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hearth {

class page_memory {
public:
    page_memory() = default;
    // Reserves `bytes` (0 allowed) of zero-filled private memory without committing it
    // (MAP_NORESERVE). Throws std::runtime_error ("cannot reserve N bytes for the KV cache: ...").
    explicit page_memory(size_t bytes);
    ~page_memory();
    page_memory(page_memory&& other) noexcept;
    page_memory& operator=(page_memory&& other) noexcept;
    page_memory(const page_memory&) = delete;
    page_memory& operator=(const page_memory&) = delete;

    uint8_t* data() { return data_; }
    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }

    // Returns the whole pages inside [offset, offset + length) (clipped to the reservation) to
    // the OS; they read as zero afterwards. Returns the bytes released (0 when no whole page fits).
    size_t release(size_t offset, size_t length);

    static size_t page_size();  // the OS page size, the unit of release
    // `bytes` rounded up to a whole number of pages.
    static size_t round_up(size_t bytes) { return (bytes + page_size() - 1) / page_size() * page_size(); }

private:
    uint8_t* data_ = nullptr;  // start of the mapping; null when size_ is 0
    size_t size_ = 0;          // bytes reserved
};

}  // namespace hearth
