import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A float32 weight matrix `[rows, columns]` (`columns` a multiple of 32) stored as strips of 32
/// columns: strip s holds `W[0..<rows, 32s..<32s+32]` row after row (Sources/CKernels/PackedGEMM.c).
///
/// Why: ONNX Runtime packs constant GEMM operands once when a session starts; OpenBLAS packs its B
/// operand on every call. The loader stores MatMul weights in this layout where it writes them
/// anyway (the aligned weight cache, or its copy of a misaligned weight; `WeightPacking`), so the
/// packed GEMM (`PackedGEMM`) reads them as they are: one sequential stream per strip, 8 rows of
/// the activations at a time. Same bytes as the row-major matrix, so no extra memory.
///
/// Kernels that know the layout (`linear`, `matmul`, attention's projections) ask
/// `Tensor.floatPackedStrips()`; every other reader goes through `TensorStorage.pointer` and gets a
/// contiguous copy, made once on first use and kept, as for `PaddedRows`.
public final class PackedStrips: @unchecked Sendable {
    /// Columns per strip.
    public static let stripColumns = Int(CK_PACKED_STRIP_COLUMNS)

    public let base: UnsafePointer<Float>
    public let rows: Int
    public let columns: Int
    /// The tensor holding these strips is the transpose of the `[rows, columns]` matrix: row-major
    /// `[columns, rows]` (a Conv weight `[M, C, kH, kW]`, read by the patch embedding as the
    /// `[C·kH·kW, M]` matrix). Its readers ask `Tensor.floatTransposedPackedStrips()`.
    public let transposed: Bool
    /// The strips lie in a read-only private file mapping (the aligned weight cache): pages of it
    /// dropped from this process fault back in from the page cache, unchanged, when read again.
    public let fileBacked: Bool
    private let copy = ContiguousCopy()
    private let bfloat16Copy = ContiguousCopy()

    /// Whether a `[rows, columns]` float32 matrix can be stored in this layout.
    public static func fits(rows: Int, columns: Int) -> Bool {
        rows > 0 && columns > 0 && columns % stripColumns == 0
    }

    /// The memory at `base` must hold the `rows * columns` packed floats for as long as this object lives.
    /// `fileBacked` only for memory in a read-only private file mapping (see the property).
    public init(base: UnsafePointer<Float>, rows: Int, columns: Int, transposed: Bool = false, fileBacked: Bool = false) {
        precondition(Self.fits(rows: rows, columns: columns), "invalid packed strips \(rows)x\(columns)")
        self.base = base
        self.rows = rows
        self.columns = columns
        self.transposed = transposed
        self.fileBacked = fileBacked
    }

    /// Packs row-major `[rows, columns]` at `source` (rows `rowPitch` floats apart) into
    /// `destination` (`rows * columns` floats); `fits(rows:columns:)` must hold.
    public static func pack(rows: Int, columns: Int, from source: UnsafePointer<Float>, rowPitch: Int,
                            into destination: UnsafeMutablePointer<Float>) {
        precondition(fits(rows: rows, columns: columns) && rowPitch >= columns, "invalid packed strips \(rows)x\(columns)")
        ck_pack_strips(rows, columns, source, rowPitch, destination)
    }

    /// Number of strips.
    public var strips: Int { columns / Self.stripColumns }

    /// Whether a contiguous copy has been made (for tests and memory accounting).
    public var hasContiguousCopy: Bool { copy.exists }

    /// Whether the bfloat16 strips have been made (for tests and memory accounting).
    public var hasBFloat16Strips: Bool { bfloat16Copy.exists }

    /// The matrix rounded to bfloat16 strips (Sources/CKernels/PackedGEMMBF16.c's layout), made on
    /// the first call (the strips shared out among the engine's threads) and kept: half the
    /// float32 bytes more, only when `--precision bf16` asks. Float32 strips mapped from the weight
    /// cache (`fileBacked`) then leave this process's memory: under bf16 only other readers (a
    /// contiguous copy) would still read them, and those fault them back in from the page cache.
    /// The whole job's peak RSS under bf16 went 1001 → 718 MiB (empty text cache) and 668 → 469 MiB
    /// (warm) with this, its time unchanged (working session 12).
    public func bfloat16Strips() -> UnsafePointer<UInt16> {
        let count = ck_bf16_strips_count(rows, columns)
        let pointer = bfloat16Copy.get(byteCount: count * MemoryLayout<UInt16>.size, describing: "\(rows)x\(columns) bfloat16 weight") { destination in
            let packed = destination.assumingMemoryBound(to: UInt16.self)
            let (rows, base, vector) = (rows, base, CPUFeatures.avx512BFloat16)
            Threading.parallelFor(0..<strips, minimumChunk: max(1, (1 << 16) / max(rows * Self.stripColumns, 1))) { chunk in
                if vector {
                    ck_bf16_pack_strips_avx512(rows, base, packed, chunk.lowerBound, chunk.upperBound)
                } else {
                    ck_bf16_pack_strips_portable(rows, base, packed, chunk.lowerBound, chunk.upperBound)
                }
            }
            if fileBacked {
                MemoryPages.release(UnsafeRawBufferPointer(start: base, count: rows * columns * MemoryLayout<Float>.size))
            }
        }
        return UnsafePointer(pointer.assumingMemoryBound(to: UInt16.self))
    }

    /// The tensor's bytes in row-major order (the matrix, or its transpose when `transposed`),
    /// unpacked on the first call.
    func contiguous() -> UnsafeMutableRawPointer {
        copy.get(byteCount: rows * columns * MemoryLayout<Float>.size, describing: "\(rows)x\(columns) packed weight") { destination in
            if transposed {
                ck_unpack_strips_transposed(rows, columns, base, destination.assumingMemoryBound(to: Float.self))
            } else {
                ck_unpack_strips(rows, columns, base, destination.assumingMemoryBound(to: Float.self))
            }
        }
    }
}

extension Tensor {
    /// The packed strips of this 2-D float32 weight, when its storage holds it in that layout.
    public func floatPackedStrips() -> PackedStrips? {
        guard dataType == .float32, rank == 2, let packed = storage.packed, !packed.transposed,
              packed.rows == shape[0], packed.columns == shape[1] else { return nil }
        return packed
    }

    /// The packed strips of this float32 tensor's transpose, when its storage holds them: the
    /// tensor is `[M, ...]` read as the `[M, K]` matrix (K the product of the other dimensions),
    /// and the strips hold `[K, M]`.
    public func floatTransposedPackedStrips() -> PackedStrips? {
        guard dataType == .float32, rank >= 2, let packed = storage.packed, packed.transposed,
              packed.columns == shape[0], packed.rows * packed.columns == count else { return nil }
        return packed
    }

    /// A copy of this float32 tensor (`[M, ...]`, M a multiple of 32) stored as the packed strips
    /// of its transpose, as the loader stores a patch embedding's weight (`WeightPacking`); for
    /// tests and experiments.
    public func transposedPackedStripsCopy() throws(TensorError) -> Tensor {
        guard dataType == .float32 else { throw .typeMismatch(expected: .float32, actual: dataType) }
        guard rank >= 2, shape[0] > 0, PackedStrips.fits(rows: count / shape[0], columns: shape[0]) else {
            throw .countMismatch(shape: shape, count: count)
        }
        let (rows, columns) = (count / shape[0], shape[0])
        let byteCount = count * MemoryLayout<Float>.size
        guard let owner = AlignedCopyOwner(byteCount: byteCount) else { throw .allocationFailed(bytes: byteCount) }
        let destination = owner.base.bindMemory(to: Float.self, capacity: count)
        if let source = floats.baseAddress { ck_pack_strips_transposed(rows, columns, source, destination) }
        let packed = PackedStrips(base: destination, rows: rows, columns: columns, transposed: true)
        return try Tensor(dataType: .float32, shape: shape, storage: TensorStorage(packed: packed, keeper: owner))
    }

    /// A copy of this 2-D float32 tensor stored as `PackedStrips` (its column count a multiple
    /// of 32). The loader packs weights in memory it already has (`WeightPacking`); this is for
    /// tests and experiments.
    public func packedStripsCopy() throws(TensorError) -> Tensor {
        guard dataType == .float32 else { throw .typeMismatch(expected: .float32, actual: dataType) }
        guard rank == 2, PackedStrips.fits(rows: shape[0], columns: shape[1]) else { throw .countMismatch(shape: shape, count: count) }
        let byteCount = count * MemoryLayout<Float>.size
        guard let owner = AlignedCopyOwner(byteCount: byteCount) else { throw .allocationFailed(bytes: byteCount) }
        let destination = owner.base.bindMemory(to: Float.self, capacity: count)
        if let source = floatMatrixRows() {
            PackedStrips.pack(rows: shape[0], columns: shape[1], from: source.base, rowPitch: source.rowPitch, into: destination)
        }
        let packed = PackedStrips(base: destination, rows: shape[0], columns: shape[1])
        return try Tensor(dataType: .float32, shape: shape, storage: TensorStorage(packed: packed, keeper: owner))
    }
}

/// Page-granular memory advice shared by the loader and the tensors.
public enum MemoryPages {
    /// Drops the pages that lie wholly inside `region` from this process (`MADV_DONTNEED`). Only
    /// for read-only private file mappings: their pages come back from the file, unchanged, when
    /// read again (on anonymous memory this would zero them).
    public static func release(_ region: UnsafeRawBufferPointer) {
        guard let start = region.baseAddress else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return }
        let first = (Int(bitPattern: start) + page - 1) / page * page
        let end = (Int(bitPattern: start) + region.count) / page * page
        guard end > first, let address = UnsafeMutableRawPointer(bitPattern: first) else { return }
        _ = madvise(address, end - first, Int32(MADV_DONTNEED))
    }
}
