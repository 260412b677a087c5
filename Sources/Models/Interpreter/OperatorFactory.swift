import ONNXLoader

/// Builds the operator for a node. The switch has no `default`: adding a case to `OpKind`
/// without an implementation here is a compile error.
enum OperatorFactory {
    static func make(_ kind: OpKind, node: ONNXNode, opset: Int) throws -> any Operator {
        switch kind {
        case .conv: return try ConvOperator(node: node, opset: opset)
        case .matMul: return try MatMulOperator(node: node, opset: opset)
        case .gemm: return try GemmOperator(node: node, opset: opset)
        case .add: return try AddOperator(node: node, opset: opset)
        case .sub: return try SubOperator(node: node, opset: opset)
        case .mul: return try MulOperator(node: node, opset: opset)
        case .div: return try DivOperator(node: node, opset: opset)
        case .pow: return try PowOperator(node: node, opset: opset)
        case .min: return try MinOperator(node: node, opset: opset)
        case .max: return try MaxOperator(node: node, opset: opset)
        case .sqrt: return try SqrtOperator(node: node, opset: opset)
        case .sigmoid: return try SigmoidOperator(node: node, opset: opset)
        case .erf: return try ErfOperator(node: node, opset: opset)
        case .tanh: return try TanhOperator(node: node, opset: opset)
        case .relu: return try ReluOperator(node: node, opset: opset)
        case .neg: return try NegOperator(node: node, opset: opset)
        case .exp: return try ExpOperator(node: node, opset: opset)
        case .equal: return try EqualOperator(node: node, opset: opset)
        case .less: return try LessOperator(node: node, opset: opset)
        case .greater: return try GreaterOperator(node: node, opset: opset)
        case .not: return try NotOperator(node: node, opset: opset)
        case .`where`: return try WhereOperator(node: node, opset: opset)
        case .reduceMean: return try ReduceMeanOperator(node: node, opset: opset)
        case .reduceSum: return try ReduceSumOperator(node: node, opset: opset)
        case .softmax: return try SoftmaxOperator(node: node, opset: opset)
        case .argMax: return try ArgMaxOperator(node: node, opset: opset)
        case .constant: return try ConstantOperator(node: node, opset: opset)
        case .identity: return try IdentityOperator(node: node, opset: opset)
        case .transpose: return try TransposeOperator(node: node, opset: opset)
        case .reshape: return try ReshapeOperator(node: node, opset: opset)
        case .flatten: return try FlattenOperator(node: node, opset: opset)
        case .squeeze: return try SqueezeOperator(node: node, opset: opset)
        case .unsqueeze: return try UnsqueezeOperator(node: node, opset: opset)
        case .split: return try SplitOperator(node: node, opset: opset)
        case .concat: return try ConcatOperator(node: node, opset: opset)
        case .slice: return try SliceOperator(node: node, opset: opset)
        case .gather: return try GatherOperator(node: node, opset: opset)
        case .shape: return try ShapeOperator(node: node, opset: opset)
        case .cast: return try CastOperator(node: node, opset: opset)
        case .constantOfShape: return try ConstantOfShapeOperator(node: node, opset: opset)
        case .nonZero: return try NonZeroOperator(node: node, opset: opset)
        case .expand: return try ExpandOperator(node: node, opset: opset)
        case .tile: return try TileOperator(node: node, opset: opset)
        case .range: return try RangeOperator(node: node, opset: opset)
        }
    }
}
