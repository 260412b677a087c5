import ONNXLoader

/// Every ONNX operator this engine implements, by its `op_type` spelling.
///
/// The factory in `OperatorFactory.swift` switches over this enum without a `default`, so the
/// compiler refuses an op that is listed here but has no implementation, and an op cannot be
/// reached without being listed here.
public enum OpKind: String, CaseIterable, Sendable {
    // Linear algebra
    case conv = "Conv"
    case matMul = "MatMul"
    case gemm = "Gemm"
    // Elementwise arithmetic (numpy broadcasting)
    case add = "Add"
    case sub = "Sub"
    case mul = "Mul"
    case div = "Div"
    case pow = "Pow"
    case min = "Min"
    case max = "Max"
    // Elementwise functions
    case sqrt = "Sqrt"
    case sigmoid = "Sigmoid"
    case erf = "Erf"
    case tanh = "Tanh"
    case relu = "Relu"
    case neg = "Neg"
    case exp = "Exp"
    // Comparison and selection
    case equal = "Equal"
    case less = "Less"
    case greater = "Greater"
    case not = "Not"
    case `where` = "Where"
    // Reductions and normalisation
    case reduceMean = "ReduceMean"
    case reduceSum = "ReduceSum"
    case softmax = "Softmax"
    case argMax = "ArgMax"
    // Data movement and shape programs
    case constant = "Constant"
    case identity = "Identity"
    case transpose = "Transpose"
    case reshape = "Reshape"
    case flatten = "Flatten"
    case squeeze = "Squeeze"
    case unsqueeze = "Unsqueeze"
    case split = "Split"
    case concat = "Concat"
    case slice = "Slice"
    case gather = "Gather"
    case shape = "Shape"
    case cast = "Cast"
    case constantOfShape = "ConstantOfShape"
    case nonZero = "NonZero"
    case expand = "Expand"
    case tile = "Tile"
    case range = "Range"
    // Fused operators made by the graph rewrites (domain `OpKind.fusedDomain`, never in a file)
    case fusedLayerNorm = "FusedLayerNorm"
    case fusedQuickGELU = "FusedQuickGELU"
    case fusedLinear = "FusedLinear"
    case fusedAttention = "FusedAttention"
}

extension OpKind {
    /// Domain of the nodes the rewrites create. Fused kinds are accepted only in this domain and
    /// standard kinds only in the ONNX domain, so a file can never name a fused op by accident.
    public static let fusedDomain = "ai.action-clip.fused"

    /// Whether this kind exists only as the result of a rewrite.
    public var isFused: Bool {
        switch self {
        case .fusedLayerNorm, .fusedQuickGELU, .fusedLinear, .fusedAttention: return true
        default: return false
        }
    }

    /// The kind of `node`, or nil when its (domain, op type) pair is not implemented.
    public init?(node: ONNXNode) {
        guard let kind = OpKind(rawValue: node.opType) else { return nil }
        let standardDomain = node.domain.isEmpty || node.domain == "ai.onnx"
        guard kind.isFused ? node.domain == OpKind.fusedDomain : standardDomain else { return nil }
        self = kind
    }
}
