import Foundation
import Tensor

/// Plans activation memory for one compiled graph and serves it from a single reused block.
///
/// The first run with a given set of input shapes records every large allocation: which node
/// made it (step index and ordinal within the step), its size, and when it was released. From
/// that record a plan places each block at an offset in one arena so that blocks alive at the
/// same time never share bytes (greedy, largest first). Later runs with the same input shapes
/// take their activations from the arena; the memory is faulted in once and then reused, where
/// fresh heap blocks per node each cost `mmap`, page faults and `munmap`.
///
/// Safety does not rest on the plan being right: every arena block tracks whether a tensor
/// still uses it, and a request whose planned bytes are still in use (a caller kept a tensor
/// longer than in the recorded run), or whose size differs, silently gets heap memory instead.
/// Blocks that outlive the recorded run (graph outputs, cached values) are never planned.
/// `ACTION_CLIP_ARENA=0` turns the arena off.
final class ActivationArena: @unchecked Sendable {
    static let isEnabled = ProcessInfo.processInfo.environment["ACTION_CLIP_ARENA"] != "0"
    /// Smaller tensors (shape vectors, scalars) stay on the heap, where small blocks are cheap.
    static let minimumBytes = 16 << 10
    /// Plans kept per program (one per distinct input-shape set).
    static let maximumPlans = 8

    private let lock = NSLock()
    private var plans: [String: ArenaPlan] = [:]
    private var busy = false
    /// What the last finished run did, for tests and the benchmark.
    private(set) var lastRun = RunStatistics()

    struct RunStatistics: Equatable {
        var recorded = false
        var servedFromArena = 0
        var servedFromHeap = 0
        var arenaBytes = 0
    }

    /// The allocator for one run, or nil (heap) when the arena is off or another run is using it.
    func begin(signature: String) -> RunAllocator? {
        guard Self.isEnabled else { return nil }
        lock.lock()
        defer { lock.unlock() }
        guard !busy else { return nil }
        busy = true
        if let plan = plans[signature] { return ArenaReplayer(plan: plan) }
        return plans.count < Self.maximumPlans ? AllocationRecorder(signature: signature) : nil
    }

    /// Ends a run; a recording becomes the plan for its input shapes.
    func end(_ allocator: RunAllocator?) {
        let plan = (allocator as? AllocationRecorder)?.makePlan()
        lock.lock()
        defer { lock.unlock() }
        if let allocator {
            let replayer = allocator as? ArenaReplayer
            lastRun = RunStatistics(recorded: allocator is AllocationRecorder, servedFromArena: replayer?.served ?? 0,
                                    servedFromHeap: replayer?.declined ?? 0, arenaBytes: replayer?.plan.byteCount ?? plan?.byteCount ?? 0)
        }
        busy = false
        if let recorder = allocator as? AllocationRecorder, let plan { plans[recorder.signature] = plan }
    }
}

/// Base of the per-run allocators: knows which node is allocating.
class RunAllocator: TensorAllocator, StorageRecycler, @unchecked Sendable {
    let lock = NSLock()
    private var step = 0
    private var ordinal = 0

    /// Called by the interpreter before each node runs.
    final func beginStep(_ index: Int) {
        lock.lock()
        step = index
        ordinal = 0
        lock.unlock()
    }

    /// Identifies an allocation by node and order within the node, so that nodes skipped in a
    /// later run (cached shape subgraphs) do not shift the identities of the others.
    final func nextKey() -> Int? {
        defer { ordinal += 1 }
        return ordinal < 4096 ? step * 4096 + ordinal : nil
    }

    func allocate(byteCount: Int) -> TensorStorage? { nil }
    func storageReleased(token: Int, pointer: UnsafeMutableRawPointer) {}
}

/// First run: heap blocks, with their allocation and release times.
final class AllocationRecorder: RunAllocator, @unchecked Sendable {
    struct Record {
        let key: Int
        let bytes: Int
        let start: Int
        var end: Int?
    }

    let signature: String
    private var records: [Record] = []
    private var clock = 0
    private var finished = false

    init(signature: String) { self.signature = signature }

    override func allocate(byteCount: Int) -> TensorStorage? {
        guard byteCount >= ActivationArena.minimumBytes else { return nil }
        lock.lock()
        defer { lock.unlock() }
        guard !finished, let key = nextKey() else { return nil }
        guard let raw = TensorStorage.allocateAligned(byteCount) else { return nil }
        records.append(Record(key: key, bytes: byteCount, start: clock, end: nil))
        clock += 1
        return TensorStorage(pointer: raw, byteCount: byteCount, ownership: .recycled(recycler: self, token: records.count - 1))
    }

    override func storageReleased(token: Int, pointer: UnsafeMutableRawPointer) {
        free(pointer)
        lock.lock()
        defer { lock.unlock() }
        if !finished, token < records.count {
            records[token].end = clock
            clock += 1
        }
    }

    /// Places every block released during the run; nil when there is nothing worth planning.
    func makePlan() -> ArenaPlan? {
        lock.lock()
        finished = true
        let released = records.filter { $0.end != nil }
        lock.unlock()
        guard !released.isEmpty else { return nil }
        return ArenaPlan(records: released)
    }
}

/// Offsets of the recorded blocks in one arena, and which blocks are in use right now.
final class ArenaPlan: @unchecked Sendable {
    struct Block {
        let offset: Int
        let bytes: Int
        /// Blocks placed on overlapping bytes (their lifetimes were disjoint in the recording).
        var sharesMemoryWith: [Int]
    }

    let blocks: [Block]
    let blockForKey: [Int: Int]
    let byteCount: Int
    let base: UnsafeMutableRawPointer?
    let lock = NSLock()
    var inUse: [Bool]

    init(records: [AllocationRecorder.Record]) {
        func rounded(_ bytes: Int) -> Int { (bytes + 63) & ~63 }
        // Largest first: a greedy placement that keeps the arena close to the peak live size.
        let order = records.indices.sorted { records[$0].bytes > records[$1].bytes }
        var offsets = [Int](repeating: 0, count: records.count)
        var placed: [Int] = []
        var total = 0
        for index in order {
            let record = records[index]
            let end = record.end ?? Int.max
            // Blocks alive at the same time as this one, by offset.
            let overlapping = placed.filter { other in
                records[other].start < end && record.start < (records[other].end ?? Int.max)
            }.sorted { offsets[$0] < offsets[$1] }
            var candidate = 0
            for other in overlapping {
                if candidate + rounded(record.bytes) <= offsets[other] { break }
                candidate = max(candidate, offsets[other] + rounded(records[other].bytes))
            }
            offsets[index] = candidate
            total = max(total, candidate + rounded(record.bytes))
            placed.append(index)
        }
        var blocks = records.indices.map { Block(offset: offsets[$0], bytes: records[$0].bytes, sharesMemoryWith: []) }
        for first in blocks.indices {
            for second in blocks.indices where second != first {
                let a = blocks[first], b = blocks[second]
                if a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes {
                    blocks[first].sharesMemoryWith.append(second)
                }
            }
        }
        base = TensorStorage.allocateAligned(max(total, 64))
        self.blocks = blocks
        self.blockForKey = Dictionary(records.indices.map { (records[$0].key, $0) }, uniquingKeysWith: { first, _ in first })
        self.byteCount = total
        self.inUse = [Bool](repeating: false, count: blocks.count)
    }

    deinit { free(base) }
}

/// Later runs: blocks from the arena where the plan allows it, the heap otherwise.
final class ArenaReplayer: RunAllocator, @unchecked Sendable {
    let plan: ArenaPlan
    private(set) var served = 0
    private(set) var declined = 0

    init(plan: ArenaPlan) { self.plan = plan }

    override func allocate(byteCount: Int) -> TensorStorage? {
        guard byteCount >= ActivationArena.minimumBytes, let base = plan.base else { return nil }
        lock.lock()
        let key = nextKey()
        lock.unlock()
        guard let key, let index = plan.blockForKey[key], plan.blocks[index].bytes == byteCount else {
            declined += 1
            return nil
        }
        plan.lock.lock()
        defer { plan.lock.unlock() }
        let block = plan.blocks[index]
        guard !plan.inUse[index], !block.sharesMemoryWith.contains(where: { plan.inUse[$0] }) else {
            declined += 1
            return nil
        }
        plan.inUse[index] = true
        served += 1
        // The storage keeps this replayer (and so the plan and its memory) alive.
        return TensorStorage(pointer: base + block.offset, byteCount: byteCount, ownership: .recycled(recycler: self, token: index))
    }

    override func storageReleased(token: Int, pointer: UnsafeMutableRawPointer) {
        plan.lock.lock()
        plan.inUse[token] = false
        plan.lock.unlock()
    }
}
