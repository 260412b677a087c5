import Foundation
import Tensor

/// Optional instrumentation switched on by environment variables, for studying the engine:
///
/// - `ACTION_CLIP_TIMING=1`: after each graph run, a table of total time per op type on stderr.
/// - `ACTION_CLIP_TRACE=1`: one stderr line per executed node: op, node, input and output shapes, time.
///
/// Both are read once per process; when neither is set, `current` is nil and the interpreter
/// pays one nil check per node (and one locked read per graph run).
///
/// `collect(_:)` gathers the same per-op-type totals as data instead of printing them (used by
/// `action-clip bench --ops`).
public final class ExecutionProfile: @unchecked Sendable {
    /// The profile graph runs report to: an active `collect` call's, else the environment's.
    public static var current: ExecutionProfile? {
        collectorLock.lock()
        defer { collectorLock.unlock() }
        return collector ?? fromEnvironment
    }

    static let fromEnvironment: ExecutionProfile? = {
        let trace = switchedOn("ACTION_CLIP_TRACE")
        return timingRequested || trace ? ExecutionProfile(timing: timingRequested, trace: trace) : nil
    }()

    /// Whether `ACTION_CLIP_TIMING` is set (and not "0"); commands use it for their own timings too.
    public static let timingRequested = switchedOn("ACTION_CLIP_TIMING")

    private static func switchedOn(_ variable: String) -> Bool {
        ProcessInfo.processInfo.environment[variable].map { $0 != "0" && !$0.isEmpty } ?? false
    }

    private static let collectorLock = NSLock()
    nonisolated(unsafe) private static var collector: ExecutionProfile?

    /// Total time and call count of one op type.
    public struct OpTotal: Sendable, Equatable {
        public let opType: String
        public let seconds: Double
        public let calls: Int
    }

    /// Runs `body` with every graph run's node times summed per op type (across all runs made
    /// inside `body`), and returns them, slowest first. Not reentrant: an inner call replaces
    /// the outer one's collector for its duration.
    public static func collect<Result>(_ body: () throws -> Result) rethrows -> (result: Result, totals: [OpTotal]) {
        let profile = ExecutionProfile(timing: true, trace: false, printsRuns: false)
        collectorLock.lock()
        let previous = collector
        collector = profile
        collectorLock.unlock()
        defer {
            collectorLock.lock()
            collector = previous
            collectorLock.unlock()
        }
        let result = try body()
        return (result, profile.snapshot())
    }

    let timing: Bool
    let trace: Bool
    /// Print (and reset) the table after each run, as ACTION_CLIP_TIMING does; else accumulate.
    let printsRuns: Bool
    private let lock = NSLock()
    private var totals: [String: (seconds: Double, calls: Int)] = [:]

    init(timing: Bool, trace: Bool, printsRuns: Bool = true) {
        self.timing = timing
        self.trace = trace
        self.printsRuns = printsRuns
    }

    /// The totals so far, slowest first.
    public func snapshot() -> [OpTotal] {
        lock.lock()
        defer { lock.unlock() }
        return totals.map { OpTotal(opType: $0.key, seconds: $0.value.seconds, calls: $0.value.calls) }
            .sorted { $0.seconds > $1.seconds }
    }

    func record(step: GraphProgram.Step, inputs: [Tensor?], outputs: [Tensor], seconds: Double) {
        if trace {
            let inputShapes = inputs.map { $0.map { shapeText($0) } ?? "-" }.joined(separator: " ")
            let outputShapes = outputs.map { shapeText($0) }.joined(separator: " ")
            let line = String(format: "%9.3f ms  %@  %@ <- %@\n", seconds * 1000,
                              step.node.displayName, outputShapes, inputShapes)
            FileHandle.standardError.write(Data(line.utf8))
        }
        if timing {
            lock.lock()
            let entry = totals[step.kind.rawValue] ?? (0, 0)
            totals[step.kind.rawValue] = (entry.seconds + seconds, entry.calls + 1)
            lock.unlock()
        }
    }

    func finishRun() {
        guard timing, printsRuns else { return }
        lock.lock()
        let snapshot = totals
        totals = [:]
        lock.unlock()
        let total = snapshot.values.reduce(0) { $0 + $1.seconds }
        var text = "op timing (ACTION_CLIP_TIMING):\n"
        for (op, entry) in snapshot.sorted(by: { $0.value.seconds > $1.value.seconds }) {
            text += String(format: "  %-16@ %9.3f ms  %5.1f%%  %6d calls\n", op as NSString,
                           entry.seconds * 1000, total > 0 ? entry.seconds / total * 100 : 0, entry.calls)
        }
        text += String(format: "  %-16@ %9.3f ms\n", "total" as NSString, total * 1000)
        FileHandle.standardError.write(Data(text.utf8))
    }

    private func shapeText(_ tensor: Tensor) -> String {
        "\(tensor.dataType)[" + tensor.shape.map(String.init).joined(separator: ",") + "]"
    }
}
