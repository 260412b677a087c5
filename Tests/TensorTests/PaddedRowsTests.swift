import Testing
@testable import Tensor

/// Weights stored with padded rows (`PaddedRows`; NaN in the gaps): the GEMM kernels read them at
/// their pitch, and every other reader sees the same values as from contiguous storage.
@Suite struct PaddedRowsTests {
    /// Row counts on the skinny kernel (2...12) and on sgemm, with the fusion graph's padding (16)
    /// and an odd one; n a multiple of the kernel's strips and not.
    @Test(arguments: [(8, 64, 48, 16), (8, 33, 100, 3), (3, 40, 512, 16), (40, 64, 48, 16), (1, 20, 37, 5), (77, 70, 130, 16)])
    func linearAndMatMulReadThePitch(rows: Int, k: Int, n: Int, extra: Int) throws {
        var generator = SplitMix64(seed: UInt64(rows * 1009 + k * 31 + n + extra))
        let xValues = generator.floats(rows * k, -1, 1)
        let weightValues = generator.floats(k * n, -0.3, 0.3)
        let biasValues = generator.floats(n, -1, 1)
        let x = try Tensor(xValues, shape: [rows, k])
        let weight = try Tensor(weightValues, shape: [k, n]).paddedRowsCopy(rowPitch: n + extra)
        let bias = try Tensor(biasValues, shape: [n])
        let expected = ReferenceKernels.linear(xValues, rows: rows, k: k, weight: weightValues, n: n, bias: biasValues,
                                               residual: nil, quickGELU: false)
        let fused = try linear(x, weight: weight, bias: bias).toArray(Float.self)
        #expect(maxMixedError(fused, expected) < 1e-5)
        let product = try matmul(x, weight).toArray(Float.self)
        let expectedProduct = ReferenceKernels.linear(xValues, rows: rows, k: k, weight: weightValues, n: n, bias: nil,
                                                      residual: nil, quickGELU: false)
        #expect(maxMixedError(product, expectedProduct) < 1e-5)
        // A [1, K, N] reshape of the weight still goes through the pitch; a 3-D input folds its batch.
        let batched = try matmul(try x.reshaped([1, rows, k]), try weight.reshaped([1, k, n])).toArray(Float.self)
        #expect(maxMixedError(batched, expectedProduct) < 1e-5)
        #expect(weight.storage.padded?.hasContiguousCopy == false, "the kernels must not have asked for contiguous rows")
    }

    /// Any other reader gets the values in row-major order, from one copy made on first use.
    @Test func otherReadersSeeContiguousValues() throws {
        var generator = SplitMix64(seed: 5)
        let values = generator.floats(24 * 10, -1, 1)
        let weight = try Tensor(values, shape: [24, 10]).paddedRowsCopy(rowPitch: 13)
        #expect(weight.storage.padded?.hasContiguousCopy == false)
        #expect(try weight.toArray(Float.self) == values)
        #expect(weight.storage.padded?.hasContiguousCopy == true)
        let first = weight.storage.pointer
        #expect(weight.storage.pointer == first, "the copy is made once")
        #expect(try weight.copy().toArray(Float.self) == values)
        let transposed = try weight.reshaped([10, 24])
        #expect(transposed.floatMatrixRows()?.rowPitch == 24, "another row length sees the contiguous copy")
        #expect(weight.floatMatrixRows()?.rowPitch == 13)
    }
}
