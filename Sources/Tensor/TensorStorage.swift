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

    /// Start of the bytes, in row-major order. Aligned to at least 16 bytes for every ownership
    /// kind except `.borrowed`, whose creator must check alignment for the element type it serves.
    /// For a storage of `PaddedRows` this is a contiguous copy made on first use (see there).
    /// For a storage of `PackedStrips` it is likewise a contiguous copy made on first use.
    @inline(__always)
    public var pointer: UnsafeMutableRawPointer { directPointer ?? relaidContiguous() }
    public let byteCount: Int
    public let ownership: Ownership
    /// The matrix rows at a pitch, when this storage holds a weight matrix in that layout.
    public let padded: PaddedRows?
    /// The matrix in strips of 32 columns, when this storage holds a weight matrix in that layout.
    public let packed: PackedStrips?
    /// The bytes when they are stored contiguously (nil exactly when `padded` or `packed` is set).
    private let directPointer: UnsafeMutableRawPointer?

    /// The contiguous copy of a padded or packed matrix (kept out of line: the hot path is `directPointer`).
    @inline(never)
    private func relaidContiguous() -> UnsafeMutableRawPointer {
        if let padded { return padded.contiguous() }
        return packed.unsafelyUnwrapped.contiguous()
    }

    /// Wraps memory that someone else allocated.
    public init(pointer: UnsafeMutableRawPointer, byteCount: Int, ownership: Ownership) {
        self.directPointer = pointer
        self.byteCount = byteCount
        self.ownership = ownership
        self.padded = nil
        self.packed = nil
    }

    /// Wraps a matrix someone else stored in packed strips, in memory `keeper` keeps alive.
    public init(packed: PackedStrips, keeper: AnyObject & Sendable) {
        self.directPointer = nil
        self.byteCount = packed.rows * packed.columns * MemoryLayout<Float>.size
        self.ownership = .borrowed(keeper: keeper)
        self.padded = nil
        self.packed = packed
    }

    /// Wraps a matrix whose rows someone else stored at a pitch, in memory `keeper` keeps alive
    /// (the contiguous copy, if one is ever made, is the `PaddedRows`' own).
    public init(padded: PaddedRows, keeper: AnyObject & Sendable) {
        self.directPointer = nil
        self.byteCount = padded.rows * padded.rowLength * padded.elementSize
        self.ownership = .borrowed(keeper: keeper)
        self.padded = padded
        self.packed = nil
    }

    /// Allocates `byteCount` bytes (uninitialised), 64-byte aligned so SIMD loads never split a cache line.
    /// Returns nil when the allocation fails, so callers can turn a huge size into an error, not a trap.
    public init?(allocating byteCount: Int) {
        // posix_memalign with size 0 may return nil; keep a valid pointer for empty tensors.
        guard let raw = Self.allocateAligned(max(byteCount, 64)) else { return nil }
        self.directPointer = raw
        self.byteCount = byteCount
        self.ownership = .allocated
        self.padded = nil
        self.packed = nil
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
        guard let directPointer else { return }  // padded rows and packed strips are always borrowed
        switch ownership {
        case .allocated, .malloced: free(directPointer)
        case .borrowed, .unowned: break
        case .recycled(let recycler, let token): recycler.storageReleased(token: token, pointer: directPointer)
        }
    }
}

/// A weight matrix `[rows, rowLength]` whose rows start `rowPitch` elements apart (`rowPitch >=
/// rowLength`; the gap holds nothing the engine reads).
///
/// Why: the skinny-M GEMM kernel (SkinnyGEMM.swift) reads 16 consecutive rows of a weight at the
/// same columns. When a row is a multiple of 2 KB long (512, 1536 or 2048 floats, the fusion and
/// text transformers' widths), those 16 addresses fall in one or two of the L1 cache's 4 KB-periodic
/// sets, which hold 8 lines each, and lines are evicted before the kernel comes back for the rest
/// of them. Rows 64 bytes apart from that rhythm spread over all sets: the fusion graph's 24
/// products ran in 2.9 instead of 3.6 ms (docs/PERFORMANCE.md, working session 5). The loader
/// stores such weights padded where it has to place them anyway (the aligned weight cache, or its
/// copy of a misaligned weight), so the layout costs no extra memory or copy.
///
/// Kernels that know the layout (`linear`, `matmul`) ask `Tensor.floatMatrixRows()`; every other reader
/// uses `TensorStorage.pointer` and gets a contiguous copy, made once on first use and kept, so no
/// op can misread the gaps.
public final class PaddedRows: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let rows: Int
    public let rowLength: Int
    public let rowPitch: Int
    public let elementSize: Int
    private let copy = ContiguousCopy()

    /// The memory at `base` must hold `rows` rows of `rowPitch` elements of `elementSize` bytes
    /// (the last row needs only `rowLength`) for as long as this object lives.
    public init(base: UnsafeRawPointer, rows: Int, rowLength: Int, rowPitch: Int, elementSize: Int) {
        precondition(rows >= 0 && rowLength >= 0 && rowPitch >= rowLength && elementSize > 0, "invalid padded rows")
        self.base = base
        self.rows = rows
        self.rowLength = rowLength
        self.rowPitch = rowPitch
        self.elementSize = elementSize
    }

    /// Whether a contiguous copy has been made (for tests and memory accounting).
    public var hasContiguousCopy: Bool { copy.exists }

    /// The rows back to back, copied on the first call.
    func contiguous() -> UnsafeMutableRawPointer {
        let rowBytes = rowLength * elementSize
        return copy.get(byteCount: rows * rowBytes, describing: "\(rows)x\(rowLength) weight") { destination in
            Self.copyRows(rows, rowBytes: rowBytes, from: base, pitch: rowPitch * elementSize, to: destination, pitch: rowBytes)
        }
    }

    /// Copies `rows` rows of `rowBytes` bytes from rows `sourcePitch` bytes apart to rows
    /// `destinationPitch` bytes apart: padding a matrix, or packing it back to contiguous rows.
    public static func copyRows(_ rows: Int, rowBytes: Int, from source: UnsafeRawPointer, pitch sourcePitch: Int,
                                to destination: UnsafeMutableRawPointer, pitch destinationPitch: Int) {
        for row in 0..<rows {
            (destination + row * destinationPitch).copyMemory(from: source + row * sourcePitch, byteCount: rowBytes)
        }
    }
}

extension Tensor {
    /// A copy of this 2-D float32 tensor stored as `PaddedRows`, rows `rowPitch` elements apart
    /// and the gaps filled with `gap` (NaN by default, so a reader that strays into them shows).
    /// The loader pads weights in memory it already has (`MatrixRowPadding`); this is for tests
    /// and experiments.
    public func paddedRowsCopy(rowPitch: Int, gap: Float = .nan) throws(TensorError) -> Tensor {
        guard dataType == .float32 else { throw .typeMismatch(expected: .float32, actual: dataType) }
        guard rank == 2, rowPitch >= shape[1] else { throw .countMismatch(shape: shape, count: count) }
        let rows = shape[0], rowLength = shape[1]
        let total = try Shape.elementCount([rows, rowPitch])
        guard let owner = AlignedCopyOwner(byteCount: total * MemoryLayout<Float>.size) else {
            throw .allocationFailed(bytes: total * MemoryLayout<Float>.size)
        }
        let destination = owner.base.bindMemory(to: Float.self, capacity: total)
        destination.initialize(repeating: gap, count: total)
        if let source = floats.baseAddress {
            let size = MemoryLayout<Float>.size
            PaddedRows.copyRows(rows, rowBytes: rowLength * size, from: source, pitch: rowLength * size,
                                to: destination, pitch: rowPitch * size)
        }
        let padded = PaddedRows(base: owner.base, rows: rows, rowLength: rowLength, rowPitch: rowPitch,
                                elementSize: MemoryLayout<Float>.size)
        return try Tensor(dataType: .float32, shape: shape, storage: TensorStorage(padded: padded, keeper: owner))
    }
}

/// The row-major copy of a weight stored in another layout (`PaddedRows`, `PackedStrips`), made
/// once, on the first read by a kernel that does not know the layout, and kept for the weight's life.
final class ContiguousCopy: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var copy: UnsafeMutableRawPointer?

    init() { pthread_mutex_init(lock, nil) }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
        free(copy)
    }

    var exists: Bool {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return copy != nil
    }

    /// The copy, made by `fill` (given `byteCount` fresh bytes) on the first call.
    func get(byteCount: Int, describing subject: @autoclosure () -> String,
             fill: (UnsafeMutableRawPointer) -> Void) -> UnsafeMutableRawPointer {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        if let copy { return copy }
        // Out of memory for a copy of a weight the model already holds once: nothing sensible to
        // return, and a loaded model's weight was checked against the engine's size limit.
        guard let destination = TensorStorage.allocateAligned(max(byteCount, 64)) else {
            fatalError("out of memory copying a \(subject()) to contiguous rows")
        }
        fill(destination)
        copy = destination
        return destination
    }
}

/// Memory of a `paddedRowsCopy` or `packedStripsCopy`, freed with its last tensor.
final class AlignedCopyOwner: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    init?(byteCount: Int) {
        guard let base = TensorStorage.allocateAligned(max(byteCount, 64)) else { return nil }
        self.base = base
    }
    deinit { free(base) }
}
