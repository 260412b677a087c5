import Testing
@testable import Tensor

@Suite struct ConvTests {
    func check(x xShape: [Int], w wShape: [Int], bias: Bool, geometry: ConvolutionGeometry, expected: [Int]) throws {
        var generator = SplitMix64(seed: UInt64(xShape.reduce(0, +) * 31 + wShape.reduce(0, +)))
        let x = try randomTensor(xShape, &generator), w = try randomTensor(wShape, &generator)
        let b = bias ? try randomTensor([wShape[0]], &generator) : nil
        let fast = try conv2d(x, w, bias: b, geometry: geometry)
        let reference = try ReferenceKernels.conv2d(x, w, bias: b, geometry: geometry)
        #expect(fast.shape == expected)
        // As in GEMMTests: float32 accumulation error grows with the inner dimension (C·kH·kW, 3072
        // for the patch embedding) and differs between OpenBLAS kernel sets (it failed at 1e-5 with
        // the Zen kernels), so the bound follows it.
        let inner = wShape.dropFirst().reduce(1, *)
        #expect(maxMixedError(try fast.toArray(Float.self), try reference.toArray(Float.self)) < Swift.max(1e-5, 1e-7 * Float(inner)))
    }

    @Test func patchEmbeddingStrideEqualsKernel() throws {
        // The ViT-B/32 stem in miniature: kernel = stride, no padding, no bias.
        try check(x: [2, 3, 64, 64], w: [16, 3, 32, 32], bias: false,
                  geometry: ConvolutionGeometry(strides: [32, 32]), expected: [2, 16, 2, 2])
    }

    @Test func patchEmbeddingWithBiasAndLeftoverPixels() throws {
        // Windows that tile the image (stride = kernel) take the one-sgemm path; pixels past the last
        // whole window are ignored, and non-square kernels keep rows and columns apart.
        try check(x: [3, 2, 70, 65], w: [5, 2, 32, 16], bias: true,
                  geometry: ConvolutionGeometry(strides: [32, 16]), expected: [3, 5, 2, 4])
        try check(x: [1, 3, 4, 4], w: [2, 3, 2, 2], bias: false,
                  geometry: ConvolutionGeometry(strides: [2, 2]), expected: [1, 2, 2, 2])
    }

    /// A weight stored as the packed strips of its transpose (as the loader stores a patch
    /// embedding's on AVX-512 CPUs) gives the result of the plain weight on the patch path without
    /// being unpacked, and the plain result on any other path through its contiguous copy. The
    /// packed result is checked against the reference kernel too, within the same bound as above.
    @Test(arguments: [([2, 3, 64, 64], [32, 3, 32, 32], [32, 32], true), ([3, 2, 70, 65], [64, 2, 32, 16], [32, 16], false),
                      ([1, 3, 9, 9], [32, 3, 3, 3], [2, 2], true)])
    func transposedPackedWeight(xShape: [Int], wShape: [Int], strides: [Int], bias: Bool) throws {
        var generator = SplitMix64(seed: UInt64(wShape.reduce(0, +)))
        let x = try randomTensor(xShape, &generator), w = try randomTensor(wShape, &generator)
        let b = bias ? try randomTensor([wShape[0]], &generator) : nil
        let packed = try w.transposedPackedStripsCopy()
        let strips = try #require(packed.floatTransposedPackedStrips())
        #expect(packed.floatPackedStrips() == nil && w.floatTransposedPackedStrips() == nil)
        let geometry = ConvolutionGeometry(strides: strides)
        let plain = try conv2d(x, w, bias: b, geometry: geometry).toArray(Float.self)
        let fromPacked = try conv2d(x, packed, bias: b, geometry: geometry).toArray(Float.self)
        let reference = try ReferenceKernels.conv2d(x, w, bias: b, geometry: geometry).toArray(Float.self)
        let inner = wShape.dropFirst().reduce(1, *)
        #expect(maxMixedError(fromPacked, plain) < Swift.max(1e-5, 1e-7 * Float(inner)))
        #expect(maxMixedError(fromPacked, reference) < Swift.max(1e-5, 1e-7 * Float(inner)))
        let patches = strides == [wShape[2], wShape[3]]
        #expect(strips.hasContiguousCopy == !patches, "the patch path must not unpack the weight")
        #expect(try packed.toArray(Float.self) == w.toArray(Float.self))
    }

    @Test func padsStridesDilations() throws {
        try check(x: [1, 3, 11, 13], w: [5, 3, 3, 3], bias: true,
                  geometry: ConvolutionGeometry(pads: [1, 2, 0, 1], strides: [2, 1], dilations: [1, 2]),
                  expected: [1, 5, 5, 12])
        try check(x: [2, 4, 9, 9], w: [3, 4, 3, 2], bias: false,
                  geometry: ConvolutionGeometry(pads: [2, 2, 2, 2], strides: [3, 2], dilations: [2, 1]),
                  expected: [2, 3, 3, 6])
    }

    @Test func pointwiseKernelSkipsUnfolding() throws {
        try check(x: [2, 6, 5, 7], w: [4, 6, 1, 1], bias: true, geometry: ConvolutionGeometry(), expected: [2, 4, 5, 7])
    }

    @Test func rejectsUnsupportedAndMismatched() throws {
        let x = try Tensor.zeros(.float32, shape: [1, 4, 8, 8])
        let w = try Tensor.zeros(.float32, shape: [2, 2, 3, 3])
        #expect(throws: KernelError.self) { try conv2d(x, w, bias: nil, geometry: ConvolutionGeometry(group: 2)) }
        #expect(throws: KernelError.self) { try conv2d(x, w, bias: nil, geometry: ConvolutionGeometry()) }
        let big = try Tensor.zeros(.float32, shape: [2, 4, 9, 9])
        #expect(throws: KernelError.self) { try conv2d(x, big, bias: nil, geometry: ConvolutionGeometry()) }
    }
}
