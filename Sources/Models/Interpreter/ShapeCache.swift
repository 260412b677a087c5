import Foundation
import ONNXLoader
import Tensor

/// Values of a graph's shape-only slice, kept per input-shape signature.
///
/// A node is shape-only when its result can depend on the graph inputs only through their
/// shapes: `Shape` itself, and any node whose inputs are all shape-only values, initializers or
/// constants (Gather/Unsqueeze/Concat/Mul/Div/Cast on int64, ConstantOfShape, NonZero, Expand,
/// the class-token zeros, ...). For one set of input shapes these values never change, so the
/// first run with a signature computes them and stores the ones that data nodes read; later runs
/// with the same signature start from the stored values and skip the shape-only nodes.
/// Safe to use from several threads at once (one lock around the table).
final class ShapeCache: @unchecked Sendable {
    /// Per compiled step: whether it belongs to the shape-only slice.
    let shapeOnlySteps: [Bool]
    /// Shape-only slots read by data steps or returned as graph outputs: what an entry stores.
    let boundarySlots: Set<Int>
    /// Signatures kept at most; beyond this the oldest is dropped (the app uses one or two).
    static let capacity = 16

    private let lock = NSLock()
    private var entries: [String: [(slot: Int, tensor: Tensor)]] = [:]
    private var order: [String] = []

    init(shapeOnlySteps: [Bool], boundarySlots: Set<Int>) {
        self.shapeOnlySteps = shapeOnlySteps
        self.boundarySlots = boundarySlots
    }

    /// Finds the shape-only slice of compiled steps. Initializer slots count as constant.
    static func analyse(steps: [GraphProgram.Step], slotCount: Int, initializerSlots: [Int],
                        outputSlots: [Int]) -> ShapeCache {
        var shapeOnlySlot = [Bool](repeating: false, count: slotCount)
        for slot in initializerSlots { shapeOnlySlot[slot] = true }
        var shapeOnlySteps = [Bool](repeating: false, count: steps.count)
        for (index, step) in steps.enumerated() {
            let inputs = step.inputSlots.compactMap { $0 }
            let shapeOnly = step.kind == .shape || inputs.allSatisfy { shapeOnlySlot[$0] }
            guard shapeOnly else { continue }
            shapeOnlySteps[index] = true
            for slot in step.outputSlots.compactMap({ $0 }) { shapeOnlySlot[slot] = true }
        }
        let initializers = Set(initializerSlots)
        var boundary = Set<Int>()
        for (index, step) in steps.enumerated() where !shapeOnlySteps[index] {
            for slot in step.inputSlots.compactMap({ $0 }) where shapeOnlySlot[slot] && !initializers.contains(slot) {
                boundary.insert(slot)
            }
        }
        for slot in outputSlots where shapeOnlySlot[slot] && !initializers.contains(slot) { boundary.insert(slot) }
        return ShapeCache(shapeOnlySteps: shapeOnlySteps, boundarySlots: boundary)
    }

    /// The cache key of a set of feeds: each input's element type and shape, in input order.
    static func signature(_ feeds: [String: Tensor], inputs: [(info: ValueInfo, slot: Int)]) -> String {
        inputs.map { input in
            guard let tensor = feeds[input.info.name] else { return "-" }
            return "\(tensor.dataType.rawValue):" + tensor.shape.map(String.init).joined(separator: "x")
        }.joined(separator: "|")
    }

    func lookup(_ key: String) -> [(slot: Int, tensor: Tensor)]? {
        lock.lock()
        defer { lock.unlock() }
        return entries[key]
    }

    func store(_ key: String, _ values: [(slot: Int, tensor: Tensor)]) {
        lock.lock()
        defer { lock.unlock() }
        if entries[key] == nil {
            order.append(key)
            if order.count > Self.capacity { entries[order.removeFirst()] = nil }
        }
        entries[key] = values
    }
}
