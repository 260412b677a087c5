import Testing
@testable import Tensor

@Suite struct LayerNormTests {
    @Test func matchesReferenceOnOddWidths() throws {
        var generator = SplitMix64(seed: 31)
        for (rows, columns, epsilon) in [(50, 768, Float(1e-5)), (8, 512, 1e-12), (7, 33, 1e-5), (200, 513, 1e-5)] {
            // An offset makes the two-pass variance matter (E[x^2] - E[x]^2 would cancel).
            let values = generator.floats(rows * columns, 99, 101)
            let gamma = generator.floats(columns, 0.5, 1.5), beta = generator.floats(columns, -1, 1)
            let result = try layerNorm(Tensor(values, shape: [rows, columns]), gamma: Tensor(gamma, shape: [columns]),
                                       beta: Tensor(beta, shape: [columns]), epsilon: epsilon)
            let reference = ReferenceKernels.layerNorm(values, rows: rows, columns: columns, gamma: gamma, beta: beta, epsilon: epsilon)
            #expect(maxMixedError(try result.toArray(Float.self), reference) < 1e-4, "\(rows)x\(columns)")
        }
        let x = try Tensor.zeros(.float32, shape: [2, 4])
        #expect(throws: KernelError.self) { try layerNorm(x, gamma: Tensor.zeros(.float32, shape: [3]), beta: x, epsilon: 1e-5) }
    }
}
