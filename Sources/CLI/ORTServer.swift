import Foundation

/// ONNX Runtime in a child process (`Reference/bench_ort.py --serve`), run one graph at a time on
/// request, so that `bench --compare-ort` can alternate its runs with ours. Blocks of runs taken
/// minutes apart compared the machine's moods as much as the two engines (see bench_ort.py).
final class ORTServer {
    private(set) var version = "?"
    private let process = Process()
    private let requests = Pipe()
    private let replies = Pipe()
    private var buffered = Data()
    private var closed = false

    init(python: String, arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = arguments
        process.standardInput = requests
        process.standardOutput = replies
        // A child that dies must not take us with it: writes to its closed pipe then fail with
        // EPIPE (reported below) instead of raising SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        do { try process.run() } catch { throw CLIError("\(python): cannot start it: \(error.localizedDescription)") }
        let ready = try nextObject()
        guard let version = ready["onnxruntime"] as? String else {
            throw CLIError("bench_ort.py: unexpected first line (no onnxruntime version)")
        }
        self.version = version
    }

    /// Runs `graph` `repeats` times back to back in ONNX Runtime; the mean wall time per run in
    /// milliseconds.
    func run(_ graph: String, repeats: Int = 1) throws -> Double {
        do { try requests.fileHandleForWriting.write(contentsOf: Data("\(graph) \(max(1, repeats))\n".utf8)) } catch {
            throw CLIError("bench_ort.py is not reading its requests: \(error.localizedDescription)")
        }
        let reply = try nextObject()
        if let error = reply["error"] as? String { throw CLIError("bench_ort.py: \(error)") }
        guard reply["graph"] as? String == graph, let milliseconds = reply["ms"] as? Double else {
            throw CLIError("bench_ort.py: unexpected reply to a \(graph) run")
        }
        return milliseconds
    }

    /// Asks the child to stop and waits for it (idempotent).
    func close() {
        guard !closed else { return }
        closed = true
        try? requests.fileHandleForWriting.write(contentsOf: Data("quit\n".utf8))
        try? requests.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    deinit { close() }

    /// The next line of the child's stdout, as a JSON object.
    private func nextObject() throws -> [String: Any] {
        while true {
            if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffered[buffered.startIndex..<newline]
                buffered = Data(buffered[buffered.index(after: newline)...])
                guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else {
                    throw CLIError("bench_ort.py printed a line that is not JSON: \(String(decoding: line.prefix(200), as: UTF8.self))")
                }
                return object
            }
            let chunk = replies.fileHandleForReading.availableData
            if chunk.isEmpty {
                process.waitUntilExit()
                closed = true
                throw CLIError("bench_ort.py stopped (exit status \(process.terminationStatus); its error is above)")
            }
            buffered.append(chunk)
        }
    }
}
