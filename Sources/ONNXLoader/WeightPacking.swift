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

    // MARK: Patch embeddings

    // A Conv whose windows tile the image (stride = kernel, no padding, no dilation, one group) is a
    // matrix product (Sources/Tensor/Kernels/Conv.swift, `convolvePatches`): patches [N·oH·oW, K]
    // times the weight [M, C, kH, kW] read as W^T, [K, M] with K = C·kH·kW. The loader stores that
    // W^T in packed strips (`PackedStrips.transposed`) under the same conditions as MatMul weights:
    // same byte count, written where the loader writes anyway, on by default with AVX-512. ViT's
    // patch embedding (392 x 3072 x 768 for 8 frames) then runs on the packed GEMM, 2.4x sgemm's
    // speed on a 2-core Zen 5 (working session 12).

    /// Names of initializers read only as the weight (input 1) of Conv nodes that are patch
    /// embeddings as far as their attributes tell, with those nodes' strides; the weight's own
    /// shape is checked against them by `fitsTransposed`. A weight any other node reads, or two
    /// Convs read with different strides, is left out.
    public static func patchEmbeddingOperands(nodes: [ONNXNode], graphOutputs: [String],
                                              initializers: Set<String>) -> [String: [Int]] {
        var operands: [String: [Int]] = [:]
        var otherUse = Set(graphOutputs)
        for node in nodes {
            for (position, input) in node.inputs.enumerated() where initializers.contains(input) {
                guard position == 1, node.opType == "Conv", node.domain.isEmpty, let strides = patchStrides(node),
                      operands[input].map({ $0 == strides }) ?? true else {
                    otherUse.insert(input)
                    continue
                }
                operands[input] = strides
            }
        }
        return operands.filter { !otherUse.contains($0.key) }
    }

    /// The strides of a Conv node without padding, dilation or groups; nil otherwise.
    static func patchStrides(_ node: ONNXNode) -> [Int]? {
        func ints(_ name: String) -> [Int64]? {
            guard case .ints(let values)? = node.attributes[name] else { return nil }
            return values
        }
        if let pads = ints("pads"), pads.contains(where: { $0 != 0 }) { return nil }
        if let dilations = ints("dilations"), dilations.contains(where: { $0 != 1 }) { return nil }
        if let group = node.attributes["group"] {
            guard case .int(1) = group else { return nil }
        }
        if let autoPad = node.attributes["auto_pad"] {
            guard case .string(let value) = autoPad, value.isEmpty || value == Array("NOTSET".utf8) else { return nil }
        }
        guard let strides = ints("strides"), strides.count == 2, strides.allSatisfy({ $0 > 0 && $0 <= 1 << 16 }) else { return nil }
        if let kernel = ints("kernel_shape"), kernel != strides { return nil }
        return strides.map { Int($0) }
    }

    /// Whether a patch-embedding weight of this layout, read with these strides, can be stored as
    /// the packed strips of its transpose: float32 [M, C, kH, kW] with [kH, kW] == strides (so the
    /// windows tile), more than one tap, and M a multiple of 32.
    public static func fitsTransposed(dataType: DataType, shape: [Int], strides: [Int]) -> Bool {
        guard dataType == .float32, shape.count == 4, Array(shape[2...]) == strides, shape[2] * shape[3] > 1,
              shape[0] > 0 else { return false }
        return PackedStrips.fits(rows: shape[1] * shape[2] * shape[3], columns: shape[0])
    }
}
