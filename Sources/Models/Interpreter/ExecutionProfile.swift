import Foundation
import Tensor

/// Optional instrumentation switched on by environment variables, for studying the engine:
///
/// - `ACTION_CLIP_TIMING=1`: after each graph run, a table of total time per op type on stderr.
/// - `ACTION_CLIP_TRACE=1`: one stderr line per executed node: op, node, input and output shapes, time.
///
/// Both are read once per process; when neither is set, `current` is nil and the interpreter
/// pays one nil check per node.
public final class ExecutionProfile: @unchecked Sendable {
    public static let current: ExecutionProfile? = {
        let environment = ProcessInfo.processInfo.environment
        let timing = environment["ACTION_CLIP_TIMING"].map { $0 != "0" && !$0.isEmpty } ?? false
        let trace = environment["ACTION_CLIP_TRACE"].map { $0 != "0" && !$0.isEmpty } ?? false
        return timing || trace ? ExecutionProfile(timing: timing, trace: trace) : nil
    }()

    let timing: Bool
    let trace: Bool
    private let lock = NSLock()
    private var totals: [String: (seconds: Double, calls: Int)] = [:]

    init(timing: Bool, trace: Bool) {
        self.timing = timing
        self.trace = trace
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
        guard timing else { return }
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
