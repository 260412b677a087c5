#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensor

/// Which weight matrices the loader stores with padded rows (`PaddedRows`), and at what pitch.
///
/// A matrix is padded when all of these hold:
///  * it is an initializer used only as input B of MatMul nodes (not a graph output, not read by
///    any other node), so only GEMM kernels, which take a row pitch, read it on the fast path;
///  * it is 2-D float32 with at least 16 rows, and its rows are a multiple of 2 KB long: then 16
///    consecutive rows share one or two 4 KB-periodic L1 sets (the aliasing `PaddedRows` explains);
///    shorter or odd-sized rows spread over the sets on their own;
///  * the loader writes it somewhere anyway: a copy of misaligned raw_data, a model loaded from
///    memory, or an entry of the aligned weight cache. A weight used in place from the file's
///    mapping without a cache stays as it is (padding it would cost a copy on every load).
///
/// `ACTION_CLIP_PAD_WEIGHTS=0` turns padding off (for A/B measurements); the aligned weight cache
/// keeps one file per setting, since the setting is part of its key.
public enum MatrixRowPadding {
    /// Floats added to each row: one 64-byte cache line, which moves each row to other sets.
    /// 16 to 256 gave the same gain in session 5's sweep, 8 half of it, 4 none.
    public static let extraElements = 16

    /// The default for `ONNXLoader.load`: on unless `ACTION_CLIP_PAD_WEIGHTS=0`, read once.
    public static let enabledByEnvironment: Bool = {
        guard let value = getenv("ACTION_CLIP_PAD_WEIGHTS") else { return true }
        return String(cString: value) != "0"
    }()

    /// Names of initializers whose only readers are MatMul nodes, as their input B.
    public static func matrixOperands(nodes: [ONNXNode], graphOutputs: [String], initializers: Set<String>) -> Set<String> {
        var operands = Set<String>()
        var otherUse = Set(graphOutputs)
        for node in nodes {
            for (position, input) in node.inputs.enumerated() where initializers.contains(input) {
                if node.opType == "MatMul", node.domain.isEmpty, position == 1 {
                    operands.insert(input)
                } else {
                    otherUse.insert(input)
                }
            }
        }
        return operands.subtracting(otherUse)
    }

    /// The row pitch in elements for a matrix operand of this layout, or nil to keep it contiguous.
    public static func rowPitch(dataType: DataType, shape: [Int]) -> Int? {
        guard dataType == .float32, shape.count == 2, shape[0] >= 16, shape[1] > 0,
              (shape[1] * dataType.byteSize) % 2048 == 0 else { return nil }
        return shape[1] + extraElements
    }
}
