/// Geometry of a 2-D convolution (ONNX Conv attributes after defaults are applied).
public struct ConvolutionGeometry: Sendable, Equatable {
    /// [top, left, bottom, right], ONNX order (all begins, then all ends).
    public var pads: [Int]
    /// [vertical, horizontal].
    public var strides: [Int]
    /// [vertical, horizontal].
    public var dilations: [Int]
    /// Channel groups; only 1 is supported.
    public var group: Int

    /// Geometry from ONNX attribute values; the defaults are ONNX's (no padding, stride 1, dilation 1, one group).
    public init(pads: [Int] = [0, 0, 0, 0], strides: [Int] = [1, 1], dilations: [Int] = [1, 1], group: Int = 1) {
        self.pads = pads
        self.strides = strides
        self.dilations = dilations
        self.group = group
    }

    /// Output size of one spatial axis, or nil when the dilated kernel does not fit the padded input.
    func outputSize(input: Int, kernel: Int, axis: Int) -> Int? {
        let span = dilations[axis] * (kernel - 1) + 1
        let padded = input + pads[axis] + pads[axis + 2]
        guard padded >= span else { return nil }
        return (padded - span) / strides[axis] + 1
    }

    func validate() throws(KernelError) {
        guard pads.count == 4, strides.count == 2, dilations.count == 2 else {
            throw KernelError("Conv 2-D needs 4 pads, 2 strides and 2 dilations, got pads \(pads), strides \(strides), dilations \(dilations)")
        }
        guard pads.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }) else {
            throw KernelError("Conv pads must be >= 0 and strides, dilations >= 1, got pads \(pads), strides \(strides), dilations \(dilations)")
        }
        guard group == 1 else { throw KernelError("Conv with group \(group) is not supported (only group 1)") }
    }
}

/// 2-D convolution, NCHW: x [N, C, H, W], weight [M, C, kH, kW], optional bias [M] -> [N, M, oH, oW].
///
/// Each image is unfolded into a patch matrix [C*kH*kW, oH*oW] (im2col, zeros where the window hits
/// padding) and multiplied by the weight read in place as a [M, C*kH*kW] matrix, so the whole
/// convolution is one sgemm per image. A 1x1 kernel with stride 1 and no padding skips the unfold.
public func conv2d(_ x: Tensor, _ weight: Tensor, bias: Tensor?, geometry: ConvolutionGeometry) throws(KernelError) -> Tensor {
    try kernelRequire(x, [.float32], "Conv input X")
    try kernelRequire(weight, [.float32], "Conv weight W")
    try geometry.validate()
    guard x.rank == 4, weight.rank == 4 else {
        throw KernelError("Conv supports 2-D convolution only: X must be [N,C,H,W] and W [M,C,kH,kW], got \(x.shape) and \(weight.shape)")
    }
    let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (filters, kernelHeight, kernelWidth) = (weight.shape[0], weight.shape[2], weight.shape[3])
    guard weight.shape[1] == channels else {
        throw KernelError("Conv weight \(weight.shape) expects \(weight.shape[1]) input channels, X \(x.shape) has \(channels)")
    }
    guard let outputHeight = geometry.outputSize(input: height, kernel: kernelHeight, axis: 0),
          let outputWidth = geometry.outputSize(input: width, kernel: kernelWidth, axis: 1) else {
        throw KernelError("Conv kernel \(weight.shape) with dilations \(geometry.dilations) does not fit input \(x.shape) padded by \(geometry.pads)")
    }
    if let bias {
        try kernelRequire(bias, [.float32], "Conv bias B")
        guard bias.shape == [filters] else { throw KernelError("Conv bias must have shape [\(filters)], got \(bias.shape)") }
    }
    let output = try kernelOutput(.float32, [batch, filters, outputHeight, outputWidth])
    let patchSize = channels * kernelHeight * kernelWidth
    let positions = outputHeight * outputWidth
    guard output.count > 0, let input = x.floats.baseAddress, let result = output.mutableFloats.baseAddress else { return output }
    let patchify = geometry.strides == [kernelHeight, kernelWidth] && geometry.pads == [0, 0, 0, 0]
        && geometry.dilations == [1, 1] && kernelHeight * kernelWidth > 1
    if patchify {
        // A weight the loader stored as the packed strips of its transpose (`WeightPacking`) goes to
        // the packed GEMM without being unpacked; asking `weight.floats` would make a row-major copy.
        let patchFilters: PatchFilters
        if let packed = weight.floatTransposedPackedStrips(), packed.rows == patchSize, packed.columns == filters {
            patchFilters = .packed(packed)
        } else {
            guard let filterBase = weight.floats.baseAddress else { return output }
            patchFilters = .rowMajor(filterBase)
        }
        try convolvePatches(input, patchFilters, bias: bias?.floats.baseAddress, result, batch: batch, channels: channels,
                            height: height, width: width, filters: filters, kernelHeight: kernelHeight, kernelWidth: kernelWidth,
                            outputHeight: outputHeight, outputWidth: outputWidth)
        return output
    }
    guard let filterBase = weight.floats.baseAddress else { return output }
    let pointwise = kernelHeight == 1 && kernelWidth == 1 && geometry.strides == [1, 1] && geometry.pads == [0, 0, 0, 0]
    let columns = UnsafeMutablePointer<Float>.allocate(capacity: pointwise ? 1 : max(patchSize * positions, 1))
    defer { columns.deallocate() }
    for image in 0..<batch {
        let imageInput = input + image * channels * height * width
        if !pointwise {
            unfoldPatches(imageInput, into: columns, channels: channels, height: height, width: width,
                          kernelHeight: kernelHeight, kernelWidth: kernelWidth,
                          outputHeight: outputHeight, outputWidth: outputWidth, geometry: geometry)
        }
        let imageOutput = result + image * filters * positions
        var beta: Float = 0
        if let bias {
            let values = bias.floats
            for filter in 0..<filters {
                (imageOutput + filter * positions).update(repeating: values[filter], count: positions)
            }
            beta = 1
        }
        try BLAS.sgemm(transposeA: false, transposeB: false, m: filters, n: positions, k: patchSize, alpha: 1,
                       a: filterBase, lda: patchSize, b: pointwise ? imageInput : UnsafePointer(columns), ldb: positions,
                       beta: beta, c: imageOutput, ldc: positions)
    }
    return output
}

/// Convolution whose windows tile the image without overlap (stride = kernel, no padding or
/// dilation): ViT's patch embedding, 8 images x 49 patches of 3x32x32 for ViT-B/32.
///
/// Why not im2col per image: that gives one sgemm per image with only 49 output columns, which
/// OpenBLAS runs far below its peak. Here every patch of every image becomes one row of a
/// [N·oH·oW, C·kH·kW] matrix (each row is kH runs of kW contiguous floats per channel, copied
/// whole), and one sgemm with the weight read transposed in place gives [N·oH·oW, M]; a final
/// transpose to NCHW adds the bias. A weight stored as the packed strips of its transpose (the
/// loader does that on AVX-512 CPUs) goes to the packed GEMM instead: 392 x 3072 x 768 in 3.6 ms
/// against sgemm's 8.6 on a 2-core Zen 5 (`bench --kernels`, working session 12).
private func convolvePatches(_ input: UnsafePointer<Float>, _ filters: PatchFilters, bias: UnsafePointer<Float>?,
                             _ result: UnsafeMutablePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
                             filters filterCount: Int, kernelHeight: Int, kernelWidth: Int,
                             outputHeight: Int, outputWidth: Int) throws(KernelError) {
    let positions = outputHeight * outputWidth, rows = batch * positions
    let patchSize = channels * kernelHeight * kernelWidth
    let patches = UnsafeMutablePointer<Float>.allocate(capacity: max(rows * patchSize, 1))
    defer { patches.deallocate() }
    let product = UnsafeMutablePointer<Float>.allocate(capacity: max(rows * filterCount, 1))
    defer { product.deallocate() }
    Threading.parallelFor(0..<rows, minimumChunk: max(1, Threading.elementwiseChunk / max(patchSize, 1))) { range in
        for row in range {
            let image = row / positions, patchY = (row % positions) / outputWidth, patchX = row % outputWidth
            var destination = patches + row * patchSize
            for channel in 0..<channels {
                var source = input + ((image * channels + channel) * height + patchY * kernelHeight) * width + patchX * kernelWidth
                for _ in 0..<kernelHeight {
                    destination.update(from: source, count: kernelWidth)
                    destination += kernelWidth
                    source += width
                }
            }
        }
    }
    switch filters {
    case .rowMajor(let weight):
        try BLAS.sgemm(transposeA: false, transposeB: true, m: rows, n: filterCount, k: patchSize, alpha: 1,
                       a: patches, lda: patchSize, b: weight, ldb: patchSize, beta: 0, c: product, ldc: filterCount)
    case .packed(let strips):
        PackedGEMM.multiply(rows: rows, a: patches, lda: patchSize, weights: strips, c: product, ldc: filterCount,
                            accumulate: false)
    }
    // [N, oH·oW, M] -> [N, M, oH·oW], plus the bias.
    Threading.parallelFor(0..<batch * filterCount, minimumChunk: max(1, Threading.elementwiseChunk / max(positions, 1))) { range in
        for plane in range {
            let image = plane / filterCount, filter = plane % filterCount
            let line = result + plane * positions
            let column = product + image * positions * filterCount + filter
            let offset = bias?[filter] ?? 0
            for position in 0..<positions { line[position] = column[position * filterCount] + offset }
        }
    }
}

/// The patch embedding's weight as the kernel gets it.
private enum PatchFilters {
    /// [M, C·kH·kW] row-major, read transposed by sgemm.
    case rowMajor(UnsafePointer<Float>)
    /// The packed strips of its transpose, [C·kH·kW, M].
    case packed(PackedStrips)
}

/// im2col for one image: row (c, kh, kw) of `columns` holds, for every output position, the input
/// pixel that kernel tap sees (0 in the padding).
private func unfoldPatches(_ input: UnsafePointer<Float>, into columns: UnsafeMutablePointer<Float>,
                           channels: Int, height: Int, width: Int, kernelHeight: Int, kernelWidth: Int,
                           outputHeight: Int, outputWidth: Int, geometry: ConvolutionGeometry) {
    let (strideY, strideX) = (geometry.strides[0], geometry.strides[1])
    let (dilationY, dilationX) = (geometry.dilations[0], geometry.dilations[1])
    let (padTop, padLeft) = (geometry.pads[0], geometry.pads[1])
    var row = columns
    for channel in 0..<channels {
        let plane = input + channel * height * width
        for tapY in 0..<kernelHeight {
            for tapX in 0..<kernelWidth {
                for outputY in 0..<outputHeight {
                    let line = row + outputY * outputWidth
                    let inputY = outputY * strideY - padTop + tapY * dilationY
                    guard inputY >= 0, inputY < height else {
                        line.update(repeating: 0, count: outputWidth)
                        continue
                    }
                    let source = plane + inputY * width
                    let offsetX = tapX * dilationX - padLeft
                    for outputX in 0..<outputWidth {
                        let inputX = outputX * strideX + offsetX
                        line[outputX] = inputX >= 0 && inputX < width ? source[inputX] : 0
                    }
                }
                row += outputHeight * outputWidth
            }
        }
    }
}

extension ReferenceKernels {
    /// Direct seven-loop convolution in Double (no unfolding, no BLAS).
    public static func conv2d(_ x: Tensor, _ weight: Tensor, bias: Tensor?, geometry: ConvolutionGeometry) throws(KernelError) -> Tensor {
        let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (filters, kernelHeight, kernelWidth) = (weight.shape[0], weight.shape[2], weight.shape[3])
        guard let outputHeight = geometry.outputSize(input: height, kernel: kernelHeight, axis: 0),
              let outputWidth = geometry.outputSize(input: width, kernel: kernelWidth, axis: 1) else {
            throw KernelError("reference Conv: kernel does not fit")
        }
        let input = x.floats, filter = weight.floats
        var values: [Float] = []
        for image in 0..<batch {
            for output in 0..<filters {
                for outputY in 0..<outputHeight {
                    for outputX in 0..<outputWidth {
                        var total = Double(bias?.floats[output] ?? 0)
                        for channel in 0..<channels {
                            for tapY in 0..<kernelHeight {
                                for tapX in 0..<kernelWidth {
                                    let inputY = outputY * geometry.strides[0] - geometry.pads[0] + tapY * geometry.dilations[0]
                                    let inputX = outputX * geometry.strides[1] - geometry.pads[1] + tapX * geometry.dilations[1]
                                    guard inputY >= 0, inputY < height, inputX >= 0, inputX < width else { continue }
                                    let pixel = input[((image * channels + channel) * height + inputY) * width + inputX]
                                    let tap = filter[((output * channels + channel) * kernelHeight + tapY) * kernelWidth + tapX]
                                    total += Double(pixel) * Double(tap)
                                }
                            }
                        }
                        values.append(Float(total))
                    }
                }
            }
        }
        do { return try Tensor(values, shape: [batch, filters, outputHeight, outputWidth]) } catch {
            throw KernelError(error.description)
        }
    }
}
