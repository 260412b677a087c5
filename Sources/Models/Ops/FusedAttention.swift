import ONNXLoader
import Tensor

// FusedAttention (domain ai.action-clip.fused, made by the `attention` rewrite; no ONNX opset).
// Inputs: X [L, N, E], W_in [E, 3E], B_in [3E], W_out [E, E], B_out [E], mask (optional,
// [L, L], [1, L, L] or [N*heads, L, L], additive, may hold -inf), residual (optional).
// Attributes: heads (int), scale (float, the factor q is multiplied by), query_position
// (optional int, set by the `select-rows` rewrite).
// Output [L, N, E]: torch 1.8.1's sequence-first multi-head self-attention including both
// projections (graphs.md §5.4), plus the residual when given. With query_position p, only
// sequence position p of that output, [N, E] (the residual then is [N, E] too).

/// Multi-head self-attention block as one node.
struct FusedAttentionOperator: Operator {
    let heads: Int
    let scale: Float
    let queryPosition: Int?

    init(node: ONNXNode, opset: Int) throws {
        guard let heads = try node.int("heads"), heads > 0, heads <= Int64(Int32.max) else {
            throw OpError("FusedAttention needs a positive 'heads' attribute")
        }
        guard let scale = try node.float("scale") else { throw OpError("FusedAttention needs the 'scale' attribute") }
        self.heads = Int(heads)
        self.scale = scale
        if let position = try node.int("query_position") {
            guard position >= 0, position <= Int64(Int32.max) else {
                throw OpError("FusedAttention 'query_position' must be a non-negative position, got \(position)")
            }
            queryPosition = Int(position)
        } else {
            queryPosition = nil
        }
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0, "X")
        let inWeight = try inputs.required(1, "W_in"), inBias = try inputs.required(2, "B_in")
        let outWeight = try inputs.required(3, "W_out"), outBias = try inputs.required(4, "B_out")
        let mask = inputs.optional(5), residual = inputs.optional(6)
        return [try mathKernel { () throws(KernelError) in
            try selfAttention(x, inWeight: inWeight, inBias: inBias, outWeight: outWeight, outBias: outBias,
                              mask: mask, residual: residual, heads: heads, scale: scale, queryPosition: queryPosition)
        }]
    }
}
