import ArgumentParser
import Foundation
import Models
import ONNXLoader
import Tensor

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run an ONNX graph on .npy inputs and write its outputs as .npy files.",
        discussion: """
        Each graph output is written as DIR/<output name>.npy, with every character outside \
        [A-Za-z0-9._-] replaced by '_'. With --all-nodes every node output is written the same way. \
        --trace prints one line per executed node: op, node, input and output shapes, time, and the \
        outputs' min/max/mean and NaN/Inf counts. --stop-after NODE (a node name or the name of a node \
        output) stops right after that node and writes its outputs instead of the graph outputs. \
        The graph runs as exported unless --fused applies the rewrite stage first.
        """
    )

    @Argument(help: "The ONNX model file.")
    var model: String

    @Option(name: .customLong("input"), help: ArgumentHelp("A graph input as NAME=FILE.npy (repeatable).", valueName: "name=file"))
    var inputs: [String] = []

    @Option(name: .customLong("output-dir"), help: "Directory for the output .npy files (created if missing).")
    var outputDirectory: String

    @Flag(name: .customLong("all-nodes"), help: "Also write every intermediate node output.")
    var allNodes = false

    @Flag(help: "Print one line per executed node with shapes, time and output statistics.")
    var trace = false

    @Option(name: .customLong("stop-after"), help: ArgumentHelp("Stop after this node (node or output name) and write its outputs.", valueName: "node"))
    var stopAfter: String?

    @Flag(help: "Apply the rewrite stage (fused kernels) before running.")
    var fused = false

    @Option(help: "Run the graph this many times and print each run time and the median; outputs of the last run are written.")
    var `repeat`: Int = 1

    @OptionGroup var precisionOption: PrecisionOption

    func validate() throws {
        for input in inputs where !input.contains("=") {
            throw ValidationError("--input takes NAME=FILE.npy, got '\(input)'")
        }
        guard `repeat` >= 1 else { throw ValidationError("--repeat must be at least 1") }
    }

    func run() throws {
        precisionOption.apply()
        var feeds: [String: Tensor] = [:]
        for input in inputs {
            guard let separator = input.firstIndex(of: "=") else { continue }
            let name = String(input[..<separator])
            let file = String(input[input.index(after: separator)...])
            feeds[name] = try userFacing { try NPY.read(path: file) }
        }
        let loaded = try userFacing(naming: model) { try ONNXLoader.load(contentsOf: model) }
        let program = try userFacing(naming: model) {
            fused ? try GraphProgram(model: loaded, options: .fromEnvironment()) : try GraphProgram(model: loaded)
        }
        let stopIndex = try stopAfter.map { name in try userFacing { try NodeLookup.step(named: name, in: program) } }
        try userFacing {
            try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        }
        var namer = TensorFileNamer()
        var written = Set<String>()
        var stopFiles: [String] = []
        let directory = outputDirectory
        let stepCount = program.steps.count
        let writeAll = allNodes
        let tracing = trace
        let observer: NodeObserver? = allNodes || trace || stopIndex != nil ? { event in
            if tracing { print(Self.traceLine(event, stepCount: stepCount)) }
            let stopping = event.stepIndex == stopIndex
            guard writeAll || stopping else { return }
            for (position, name) in event.step.node.outputs.enumerated() where !name.isEmpty && position < event.outputs.count {
                let path = (directory as NSString).appendingPathComponent(namer.fileName(for: name))
                if !written.contains(name) {
                    try NPY.write(event.outputs[position], to: path)
                    written.insert(name)
                }
                if stopping { stopFiles.append(path) }
            }
            if stopping { throw GraphError.stopped(after: event.step.node.displayName) }
        } : nil
        let clock = ContinuousClock()
        var times: [Double] = []
        var outputs: [String: Tensor] = [:]
        for _ in 0..<`repeat` {
            let start = clock.now
            do {
                outputs = try program.run(feeds, observer: observer)
            } catch GraphError.stopped(let node) {
                let elapsed = (clock.now - start).seconds
                print(String(format: "stopped after %@ in %.3f s; wrote:", node, elapsed))
                for path in stopFiles { print("  \(path)") }
                return
            } catch {
                throw CLIError(String(describing: error))
            }
            times.append((clock.now - start).seconds)
        }
        let elapsed = times.sorted()[times.count / 2]
        if times.count > 1 {
            print("run times (s): " + times.map { String(format: "%.4f", $0) }.joined(separator: " ")
                  + String(format: "; median %.4f", elapsed))
        }
        // Outputs not yet written: all of them without --all-nodes, and with it only outputs that
        // are not produced by a node (a graph input or initializer passed straight through).
        for (info, _) in program.outputs where !written.contains(info.name) {
            guard let tensor = outputs[info.name] else { continue }
            let path = (outputDirectory as NSString).appendingPathComponent(namer.fileName(for: info.name))
            try userFacing { try NPY.write(tensor, to: path) }
        }
        print(String(format: "ran %@ in %.3f s; outputs in %@", (model as NSString).lastPathComponent, elapsed, outputDirectory))
    }

    /// `node 12/237 MatMul <name>  in float32[50,8,64] float32[64,192] -> out float32[50,8,192]  0.042 ms  min=… max=… mean=… nan=0 inf=0`
    static func traceLine(_ event: NodeEvent, stepCount: Int) -> String {
        let node = event.step.node
        func describe(_ tensor: Tensor?) -> String {
            guard let tensor else { return "-" }
            return "\(tensor.dataType)[" + tensor.shape.map(String.init).joined(separator: ",") + "]"
        }
        let name = node.name.isEmpty ? "-> \(node.outputs.first ?? "?")" : node.name
        let inputs = event.inputs.map(describe).joined(separator: " ")
        let outputs = event.outputs.map { describe($0) }.joined(separator: " ")
        let statistics = event.outputs.map { TensorStatistics($0).description }.joined(separator: " | ")
        return "node \(event.stepIndex + 1)/\(stepCount) \(node.opType) \(name)  in \(inputs) -> out \(outputs)  "
            + String(format: "%.3f ms", event.seconds * 1000) + "  " + statistics
    }
}
