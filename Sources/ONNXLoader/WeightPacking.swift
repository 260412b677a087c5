#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensor

/// Which weight matrices the loader stores as `PackedStrips` (strips of 32 columns, the layout
/// of the packed GEMM, Sources/CKernels/PackedGEMM.c) instead of row-major or padded rows.
///
/// A matrix is packed when all of these hold:
///  * it is an initializer used only as input B of MatMul nodes (`MatrixRowPadding.matrixOperands`:
///    the rewrites hand such weights to `linear` and the attention kernel, which read the layout);
///  * it is 2-D float32 and its column count is a multiple of 32 (every MatMul weight of the three
///    ActionCLIP graphs: 512, 768, 1536, 2048, 2304 or 3072 columns), so the packed bytes are
///    exactly as many as the row-major ones;
///  * the loader writes it somewhere anyway: a copy of misaligned raw_data, a model loaded from
///    memory, or an entry of the aligned weight cache (which then holds the packed layout, so later
///    loads map it as it is and pack nothing).
/// Packing replaces padding (`MatrixRowPadding`) for the matrices it takes.
///
/// On by default where the packed GEMM has its AVX-512 kernel (`CPUFeatures.avx512`). Elsewhere
/// the packed GEMM's AVX2 kernel was measured no faster than OpenBLAS and the skinny kernel on
/// row-major weights (2-core Zen 3, docs/PERFORMANCE.md "Working session 9"), so it is opt-in.
/// `ACTION_CLIP_PACK_WEIGHTS=0` turns packing off, `=1` forces it on; the aligned weight cache
/// keeps one file per setting, since the setting is part of its key.
public enum WeightPacking {
    /// The default for `ONNXLoader.load`, read once.
    public static let enabledByEnvironment: Bool = {
        switch getenv("ACTION_CLIP_PACK_WEIGHTS").map({ String(cString: $0) }) {
        case "0": return false
        case "1": return true
        default: return CPUFeatures.avx512
        }
    }()

    /// Whether a matrix operand of this layout can be packed.
    public static func fits(dataType: DataType, shape: [Int]) -> Bool {
        dataType == .float32 && shape.count == 2 && PackedStrips.fits(rows: shape[0], columns: shape[1])
    }
}
