extension Movement {
    /// A tensor of `shape` with every element equal to the single element of `value`
    /// (any element type; `value` must hold exactly one element). Used by ConstantOfShape.
    public static func filled(shape: [Int], with value: Tensor) throws(MovementError) -> Tensor {
        guard value.count == 1 else {
            throw .invalidArgument("fill value must hold exactly one element, got shape \(value.shape)")
        }
        let output = try movementTensorCall { () throws(TensorError) in try Tensor.uninitialized(value.dataType, shape: shape) }
        guard output.count > 0 else { return output }
        output.storage.pointer.copyMemory(from: value.storage.pointer, byteCount: value.dataType.byteSize)
        replicateMovementBlock(output.storage.pointer, blockBytes: value.dataType.byteSize, times: output.count)
        return output
    }
}
