import ONNXLoader
import Tensor

// Conv (opset 1, 11): X [N, C, H, W] * W [M, C/group, kH, kW] (+ B [M]) -> [N, M, oH, oW].
// Attributes: auto_pad (NOTSET | SAME_UPPER | SAME_LOWER | VALID; default NOTSET), dilations
// (default 1s), group (default 1), kernel_shape (default: from W), pads ([top, left, bottom,
// right], default 0s), strides (default 1s). Opset 11 only clarified the SAME_* padding split
// (SAME_UPPER puts the extra pixel at the end), which is what is implemented for every opset.
// Supported: float32, 2-D convolution only, group 1 (group > 1 throws). The image model uses
// kernel 32, stride 32, no pads, no bias.

/// ONNX Conv, 2-D, float32, group 1.
struct ConvOperator: Operator {
    let autoPad: String
    let kernelShape: [Int]?
    let pads: [Int]?
    let strides: [Int]
    let dilations: [Int]
    let group: Int

    init(node: ONNXNode, opset: Int) throws {
        autoPad = try node.string("auto_pad", default: "NOTSET") ?? "NOTSET"
        guard ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"].contains(autoPad) else {
            throw OpError("Conv auto_pad '\(autoPad)' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
        }
        kernelShape = try node.ints("kernel_shape")?.map { Int($0) }
        pads = try node.ints("pads")?.map { Int($0) }
        strides = try node.ints("strides", default: [1, 1])?.map { Int($0) } ?? [1, 1]
        dilations = try node.ints("dilations", default: [1, 1])?.map { Int($0) } ?? [1, 1]
        group = Int(try node.int("group", default: 1) ?? 1)
        if let kernelShape, kernelShape.count != 2 {
            throw OpError("Conv supports 2-D kernels only, got kernel_shape \(kernelShape)")
        }
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0, "X"), weight = try inputs.required(1, "W"), bias = inputs.optional(2)
        guard x.rank == 4, weight.rank == 4 else {
            throw OpError("Conv supports 2-D convolution only: X must be [N,C,H,W] and W [M,C,kH,kW], got \(x.shape) and \(weight.shape)")
        }
        if let kernelShape, kernelShape != Array(weight.shape[2...]) {
            throw OpError("Conv kernel_shape \(kernelShape) does not match W \(weight.shape)")
        }
        guard strides.count == 2, dilations.count == 2 else {
            throw OpError("Conv 2-D needs 2 strides and 2 dilations, got \(strides) and \(dilations)")
        }
        let geometry = ConvolutionGeometry(pads: try resolvedPads(input: x.shape, kernel: weight.shape),
                                           strides: strides, dilations: dilations, group: group)
        return [try mathKernel { () throws(KernelError) in try conv2d(x, weight, bias: bias, geometry: geometry) }]
    }

    /// Explicit pads, or the SAME_* / VALID padding for this input size.
    private func resolvedPads(input: [Int], kernel: [Int]) throws -> [Int] {
        switch autoPad {
        case "VALID": return [0, 0, 0, 0]
        case "SAME_UPPER", "SAME_LOWER":
            var begins = [0, 0], ends = [0, 0]
            for axis in 0..<2 {
                let size = input[axis + 2]
                let outputSize = (size + strides[axis] - 1) / strides[axis]
                let span = dilations[axis] * (kernel[axis + 2] - 1) + 1
                let total = max(0, (outputSize - 1) * strides[axis] + span - size)
                begins[axis] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                ends[axis] = total - begins[axis]
            }
            return begins + ends
        default:
            let explicit = pads ?? [0, 0, 0, 0]
            guard explicit.count == 4 else { throw OpError("Conv 2-D needs 4 pads, got \(explicit)") }
            return explicit
        }
    }
}
