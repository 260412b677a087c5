import ONNXLoader
import Tensor

// Gemm: Y = alpha * A' * B' + beta * C, A' = transpose(A) if transA, B' likewise.
// Opset 7-10: C required, unidirectionally broadcast to [M, N]; opset 11+: C optional (absent = 0);
// opset 13 adds bfloat16. Before opset 7 a `broadcast` attribute existed (ignored here: the
// broadcast rule is applied always). Attributes: alpha (1.0), beta (1.0), transA (0), transB (0).
// Supported: float32, A and B 2-D; C of shape [], [1], [N], [1,N], [M,1] or [M,N]. A missing C is
// accepted in every opset. Appears in later-torch exports as Gemm(transB=1) for out_proj.

/// ONNX Gemm on float32.
struct GemmOperator: Operator {
    let alpha: Float
    let beta: Float
    let transposeA: Bool
    let transposeB: Bool

    init(node: ONNXNode, opset: Int) throws {
        alpha = try node.float("alpha", default: 1) ?? 1
        beta = try node.float("beta", default: 1) ?? 1
        transposeA = try node.int("transA", default: 0) != 0
        transposeB = try node.int("transB", default: 0) != 0
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try inputs.required(0, "A"), b = try inputs.required(1, "B"), c = inputs.optional(2)
        return [try mathKernel { () throws(KernelError) in
            try gemm(a, b, c, alpha: alpha, beta: beta, transposeA: transposeA, transposeB: transposeB)
        }]
    }
}
