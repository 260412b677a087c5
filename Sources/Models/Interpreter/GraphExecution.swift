import Foundation
import ONNXLoader
import Tensor

/// What an observer sees after each node ran.
public struct NodeEvent {
    public let stepIndex: Int
    public let step: GraphProgram.Step
    public let inputs: [Tensor?]
    public let outputs: [Tensor]
    /// Wall time of the operator alone, in seconds.
    public let seconds: Double
}

/// Called after every node. Throwing `GraphError.stopped` ends the run early (used by `--stop-after`).
public typealias NodeObserver = (NodeEvent) throws -> Void

extension GraphProgram {
    /// Runs the graph on the given inputs and returns every graph output by name.
    ///
    /// Inputs are checked against the declarations: element type and rank must match, and every
    /// declared fixed dimension except the first must match too. The first (batch) dimension
    /// is free because these exports declare batch 1 or 8 but are fed other batches.
    public func run(_ feeds: [String: Tensor], observer: NodeObserver? = nil) throws(GraphError) -> [String: Tensor] {
        var slots = [Tensor?](repeating: nil, count: slotNames.count)
        for (slot, tensor) in initializerSlots { slots[slot] = tensor }
        let knownNames = inputs.map(\.info.name)
        for name in feeds.keys where !knownNames.contains(name) {
            throw .unknownInput(name, known: knownNames)
        }
        for (info, slot) in inputs {
            guard let tensor = feeds[info.name] else { throw .missingInput(info.name) }
            try Self.checkFeed(tensor, against: info)
            slots[slot] = tensor
        }

        // Shape caching is bypassed while an observer watches: it must see every node run.
        let cache = observer == nil ? shapeCache : nil
        // Both the shape cache and the activation arena are keyed by the inputs' types and shapes.
        let signature = ShapeCache.signature(feeds, inputs: inputs)
        var cached: [(slot: Int, tensor: Tensor)]? = nil
        if let cache { cached = cache.lookup(signature) }
        if let cached { for (slot, tensor) in cached { slots[slot] = tensor } }

        let allocator = activationArena.begin(signature: signature)
        defer { activationArena.end(allocator) }
        var collected: [(slot: Int, tensor: Tensor)] = []
        do {
            try TensorAllocation.$current.withValue(allocator) {
                collected = try executeSteps(&slots, observer: observer, allocator: allocator,
                                             cache: cache, skipShapeSteps: cached != nil)
            }
        } catch let error as GraphError {
            throw error
        } catch {
            throw .nodeFailed(node: "graph", message: String(describing: error))
        }
        ExecutionProfile.current?.finishRun()
        if let cache, cached == nil { cache.store(signature, collected) }

        var results: [String: Tensor] = [:]
        for (info, slot) in outputs {
            guard let tensor = slots[slot] else {
                throw .nodeFailed(node: "graph output", message: "'\(info.name)' was not computed")
            }
            results[info.name] = tensor
        }
        return results
    }

    /// Runs every step in order on `slots`, releasing values after their last reader. With a shape
    /// cache, shape-only steps are skipped when `skipShapeSteps` (their values were restored from
    /// the cache), and otherwise the values at the cache's boundary are returned for storing.
    private func executeSteps(_ slots: inout [Tensor?], observer: NodeObserver?, allocator: RunAllocator?,
                              cache: ShapeCache?, skipShapeSteps: Bool) throws(GraphError) -> [(slot: Int, tensor: Tensor)] {
        var collected: [(slot: Int, tensor: Tensor)] = []
        let profile = ExecutionProfile.current
        let clock = ContinuousClock()
        for (stepIndex, step) in steps.enumerated() {
            if let cache, skipShapeSteps, cache.shapeOnlySteps[stepIndex] {
                // Skipped, but its releases still happen here (a Shape node may be the last reader of an activation).
                for slot in step.releaseAfter { slots[slot] = nil }
                continue
            }
            allocator?.beginStep(stepIndex)
            let arguments = step.inputSlots.map { slot in slot.flatMap { slots[$0] } }
            for (position, slot) in step.inputSlots.enumerated() where slot != nil && arguments[position] == nil {
                // A released or never-produced value: a liveness bug, reported rather than trapped on.
                throw .nodeFailed(node: step.node.displayName, message: "input '\(step.node.inputs[position])' has no value")
            }
            let start = clock.now
            let results: [Tensor]
            do {
                results = try step.operation.run(arguments)
            } catch let error as GraphError {
                throw error
            } catch {
                throw .nodeFailed(node: step.node.displayName, message: String(describing: error))
            }
            let seconds = (clock.now - start).seconds
            guard results.count >= step.outputSlots.compactMap({ $0 }).count,
                  results.count <= step.outputSlots.count || step.outputSlots.isEmpty else {
                throw .outputCountMismatch(node: step.node.displayName, expected: step.outputSlots.count, actual: results.count)
            }
            for (position, slot) in step.outputSlots.enumerated() {
                if let slot, position < results.count {
                    slots[slot] = results[position]
                    if let cache, !skipShapeSteps, cache.boundarySlots.contains(slot) { collected.append((slot, results[position])) }
                }
            }
            profile?.record(step: step, inputs: arguments, outputs: results, seconds: seconds)
            if let observer {
                do {
                    try observer(NodeEvent(stepIndex: stepIndex, step: step, inputs: arguments, outputs: results, seconds: seconds))
                } catch let error as GraphError {
                    throw error
                } catch {
                    throw .nodeFailed(node: step.node.displayName, message: String(describing: error))
                }
            }
            for slot in step.releaseAfter { slots[slot] = nil }
        }
        return collected
    }

    static func checkFeed(_ tensor: Tensor, against info: ValueInfo) throws(GraphError) {
        if info.elementTypeCode != 0, tensor.dataType.rawValue != info.elementTypeCode {
            throw .inputTypeMismatch(name: info.name, expected: DataType.onnxName(code: info.elementTypeCode), actual: tensor.dataType)
        }
        guard let declared = info.shape else { return }
        let declaredText = "[" + declared.map(\.description).joined(separator: ",") + "]"
        guard declared.count == tensor.rank else {
            throw .inputShapeMismatch(name: info.name, declared: declaredText, actual: tensor.shape,
                                      reason: "rank \(tensor.rank), expected \(declared.count)")
        }
        for (axis, dimension) in declared.enumerated() where axis > 0 {
            if case .fixed(let size) = dimension, size != tensor.shape[axis] {
                throw .inputShapeMismatch(name: info.name, declared: declaredText, actual: tensor.shape,
                                          reason: "dimension \(axis) is \(tensor.shape[axis]), expected \(size)")
            }
        }
    }
}

extension Duration {
    /// The duration in seconds as a Double.
    public var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }
}
