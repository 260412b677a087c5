import Foundation
import ONNXLoader

/// Multiply-accumulate counts of the matrix ops, from captured shapes.
///
/// Only MatMul, Gemm and Conv are counted: they are over 99% of the arithmetic of these
/// networks and the published figures (ViT-B/32 4.41 GMACs per frame) count the same way.
/// One MAC is one multiply and one add, so FLOPs = 2 × MACs.
public enum OperationCost {
    /// MACs of `node` given the shapes of its inputs and outputs; nil for ops that are not
    /// counted or whose shapes are unknown.
    public static func multiplyAccumulates(_ node: ONNXNode, shape: (String) -> ValueShape?) -> Int? {
        func inputShape(_ position: Int) -> [Int]? {
            guard position < node.inputs.count, !node.inputs[position].isEmpty else { return nil }
            return shape(node.inputs[position])?.shape
        }
        guard let outputName = node.outputs.first, let output = shape(outputName)?.shape,
              let outputCount = elementCount(output) else { return nil }
        switch node.opType {
        case "MatMul":
            // numpy matmul: each output element is a dot product over A's last axis.
            guard let left = inputShape(0), let depth = left.last else { return nil }
            return outputCount * depth
        case "Gemm":
            guard let left = inputShape(0), left.count == 2 else { return nil }
            let transposeA = (try? node.int("transA", default: 0)) ?? 0
            return outputCount * (transposeA != 0 ? left[0] : left[1])
        case "Conv":
            // Each output element sums over (input channels / group) × kernel elements = W.count / Cout.
            guard let weight = inputShape(1), let outputChannels = weight.first, outputChannels > 0,
                  let weightCount = elementCount(weight) else { return nil }
            return outputCount * (weightCount / outputChannels)
        default:
            return nil
        }
    }

    static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            if overflow { return nil }
            count = product
        }
        return count
    }
}
