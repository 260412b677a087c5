import Foundation
import Models

/// Messages for people go to stderr, so stdout carries only results.
enum Diagnostics {
    static func warn(_ message: String) { write("action-clip: warning: \(message)\n") }
    static func note(_ message: String) { write("action-clip: \(message)\n") }
    static func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }

    /// Under ACTION_CLIP_TIMING, one line per stage of a command: milliseconds since the process
    /// first asked for the time (command start), so a whole job's timeline can be read off stderr.
    static func stage(_ name: String) {
        guard ExecutionProfile.timingRequested else { return }
        let elapsed = (ContinuousClock.now - processStart).seconds * 1000
        write(String(format: "stage (ACTION_CLIP_TIMING): %8.1f ms  %@\n", elapsed, name))
    }

    /// Fixes the timeline's origin; commands call it first.
    static func startTimeline() { _ = processStart }

    private static let processStart = ContinuousClock.now
}

/// A download progress bar on stderr: redrawn in place on a terminal, a few plain lines otherwise.
enum ProgressBar {
    private static let isTerminal = isatty(STDERR_FILENO) == 1
    private static let state = Mutex()

    final class Mutex: @unchecked Sendable {
        let lock = NSLock()
        var lastPercent: [String: Int] = [:]
    }

    static let report: @Sendable (String, Int64, Int64?) -> Void = { name, received, total in
        let percent = total.map { $0 > 0 ? Int(received * 100 / $0) : 0 }
        state.lock.lock()
        defer { state.lock.unlock() }
        let step = isTerminal ? 1 : 25
        let bucket = (percent ?? Int(received >> 20)) / step
        if state.lastPercent[name] == bucket { return }
        state.lastPercent[name] = bucket
        let megabytes = String(format: "%.1f", Double(received) / 1_048_576)
        var line = "downloading \(name): \(megabytes) MiB"
        if let percent, let total {
            let filled = min(30, percent * 30 / 100)
            line += String(format: " of %.1f MiB [", Double(total) / 1_048_576)
                + String(repeating: "#", count: filled) + String(repeating: " ", count: 30 - filled) + "] \(percent)%"
        }
        Diagnostics.write(isTerminal ? "\r" + line + (percent == 100 ? "\n" : "") : line + "\n")
    }
}

/// Formats of the classification result.
enum ResultFormat {
    /// ailia's `print_results` block (pipeline.md §9): probabilities printed as Python prints a
    /// float32 widened to float, which is Swift's shortest round-trip `Double` description.
    static func ailiaBlock(_ video: ZeroShotClassifier.VideoResult, labels: [String], top: Int) -> String {
        var text = String(repeating: "=", count: 62) + "\n"
        text += "class_count = \(labels.count)\n"
        for (rank, index) in ZeroShotScoring.ranking(video.scores).prefix(top).enumerated() {
            text += "+ idx = \(rank)\n"
            text += "  category = \(index) [\(labels[index])]\n"
            text += "  prob = \(Double(video.scores[index]).description)\n"
        }
        return text + "\n"
    }

    static func json(_ report: ZeroShotClassifier.Report, top: Int) -> JSONValue {
        let results: [JSONValue] = report.videos.map { video in
            let ranking = ZeroShotScoring.ranking(video.scores).prefix(top)
            return .object([
                ("video", .string(video.path)),
                ("frame_count", .int(video.frameCount)),
                ("frame_ids", .array(video.frameIndices.map { .int($0) })),
                ("seed", video.seed.map { .int(Int($0)) } ?? .null),
                ("labels", .array(report.labels.map { .string($0) })),
                ("scores", .array(video.scores.map { .number(Double($0)) })),
                ("top", .array(ranking.map { index in
                    .object([("index", .int(index)), ("label", .string(report.labels[index])),
                             ("prob", .number(Double(video.scores[index])))])
                })),
                ("warnings", .array(video.warnings.map { .string($0) })),
            ])
        }
        let timings = JSONValue.object(report.timings.map { ($0.stage, .number(($0.milliseconds * 1000).rounded() / 1000)) })
        return .object([("results", .array(results)), ("timings_ms", timings)])
    }
}
