#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A block of memory that backs one or more tensors.
///
/// Storage is a reference type so that a Reshape, Squeeze or Flatten can return a new tensor
/// over the same bytes without copying, and so that weights can live where the loader found
/// them: a `malloc` block taken over from protobuf-c, or a read-only `mmap` of an external
/// data file. Whoever created the storage says how to release it.
public final class TensorStorage: @unchecked Sendable {
    /// How the memory is given back when the last tensor using it goes away.
    public enum Ownership: Sendable {
        /// Allocated by this storage with 64-byte alignment; freed with `free`.
        case allocated
        /// A block from C `malloc` (e.g. protobuf-c's `raw_data`); freed with `free`.
        case malloced
        /// A region of a memory-mapped file, released by the keeper object (which unmaps).
        case borrowed(keeper: AnyObject & Sendable)
        /// Static or externally managed memory; nothing to do.
        case unowned
        /// Memory lent by an allocator (an activation arena), which is told when it is released.
        case recycled(recycler: any StorageRecycler, token: Int)
    }

    /// Start of the bytes. Aligned to at least 16 bytes for every ownership kind except
    /// `.borrowed`, whose creator must check alignment for the element type it serves.
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int
    public let ownership: Ownership

    /// Wraps memory that someone else allocated.
    public init(pointer: UnsafeMutableRawPointer, byteCount: Int, ownership: Ownership) {
        self.pointer = pointer
        self.byteCount = byteCount
        self.ownership = ownership
    }

    /// Allocates `byteCount` bytes (uninitialised), 64-byte aligned so SIMD loads never split a cache line.
    /// Returns nil when the allocation fails, so callers can turn a huge size into an error, not a trap.
    public init?(allocating byteCount: Int) {
        // posix_memalign with size 0 may return nil; keep a valid pointer for empty tensors.
        guard let raw = Self.allocateAligned(max(byteCount, 64)) else { return nil }
        self.pointer = raw
        self.byteCount = byteCount
        self.ownership = .allocated
    }

    /// `byteCount` bytes from `malloc`'s heap (free with `free`), 64-byte aligned, with large
    /// blocks offered to huge pages (`adviseHugePages`); nil when the allocation fails.
    public static func allocateAligned(_ byteCount: Int) -> UnsafeMutableRawPointer? {
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, byteCount) == 0, let raw else { return nil }
        adviseHugePages(raw, byteCount: byteCount)
        return raw
    }

    /// Blocks at least this large are offered to transparent huge pages.
    public static let hugePageThreshold = 4 << 20

    /// Asks the kernel to back the 2 MiB-aligned interior of a large block with transparent huge
    /// pages. Why: a first write to a fresh 4 KiB page costs a page fault, 2.7 µs each measured on
    /// this project's VMs (`minor faults` in /usr/bin/time), so a 300 MB weight copy or a first run's
    /// activations spent more time faulting than computing; with huge pages that is 512 times
    /// fewer faults (323 MB copied in 46-61 ms instead of 210-237 ms). Where THP is set to
    /// `madvise` (Debian's default) nothing happens without this call; elsewhere it is harmless.
    @inline(__always)
    static func adviseHugePages(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        #if os(Linux)
        guard byteCount >= hugePageThreshold else { return }
        let hugePage = 2 << 20
        let start = (Int(bitPattern: pointer) + hugePage - 1) / hugePage * hugePage
        let end = (Int(bitPattern: pointer) + byteCount) / hugePage * hugePage
        guard end > start, let address = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(address, end - start, Int32(MADV_HUGEPAGE))
        #endif
    }

    deinit {
        switch ownership {
        case .allocated, .malloced: free(pointer)
        case .borrowed, .unowned: break
        case .recycled(let recycler, let token): recycler.storageReleased(token: token, pointer: pointer)
        }
    }
}
