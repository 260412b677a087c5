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
        var raw: UnsafeMutableRawPointer?
        // posix_memalign with size 0 may return nil; keep a valid pointer for empty tensors.
        let status = posix_memalign(&raw, 64, max(byteCount, 64))
        guard status == 0, let raw else { return nil }
        self.pointer = raw
        self.byteCount = byteCount
        self.ownership = .allocated
    }

    deinit {
        switch ownership {
        case .allocated, .malloced: free(pointer)
        case .borrowed, .unowned: break
        case .recycled(let recycler, let token): recycler.storageReleased(token: token, pointer: pointer)
        }
    }
}
