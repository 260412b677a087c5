/// CLIP's QuickGELU activation, x * sigmoid(1.702 x), elementwise on float32 (the graphs spell it
/// Mul(h, Sigmoid(Mul(h, 1.702))); a fusion pass can replace the three nodes with this kernel).
public func quickGELU(_ x: Tensor) throws(KernelError) -> Tensor {
    try kernelRequire(x, [.float32], "QuickGELU input")
    let output = try kernelOutput(.float32, x.shape)
    guard output.count > 0, let input = x.floats.baseAddress, let result = output.mutableFloats.baseAddress else { return output }
    Threading.parallelFor(0..<x.count, minimumChunk: Threading.elementwiseChunk) { range in
        VectorMath.quickGELU(input + range.lowerBound, result + range.lowerBound, count: range.count)
    }
    return output
}

extension ReferenceKernels {
    /// QuickGELU in Double.
    public static func quickGELU(_ values: [Float]) -> [Float] {
        values.map { value in
            let x = Double(value)
            return Float(x / (1 + LibM.exp(-1.702 * x)))
        }
    }
}
