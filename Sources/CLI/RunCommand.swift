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
        [A-Za-z0-9._-] replaced by '_'. With --all-nodes every node output is written the same way.
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

    @Option(help: "Run the graph this many times (timing); outputs of the last run are written.")
    var `repeat`: Int = 1

    func validate() throws {
        for input in inputs where !input.contains("=") {
            throw ValidationError("--input takes NAME=FILE.npy, got '\(input)'")
        }
        guard `repeat` >= 1 else { throw ValidationError("--repeat must be at least 1") }
    }

    func run() throws {
        var feeds: [String: Tensor] = [:]
        for input in inputs {
            guard let separator = input.firstIndex(of: "=") else { continue }
            let name = String(input[..<separator])
            let file = String(input[input.index(after: separator)...])
            feeds[name] = try userFacing { try NPY.read(path: file) }
        }
        // Every node output only exists when nothing is fused away.
        let options: RewriteOptions = allNodes ? .none : .fromEnvironment()
        let program = try userFacing { try GraphProgram(model: try ONNXLoader.load(contentsOf: model), options: options) }
        try userFacing {
            try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        }
        var namer = TensorFileNamer()
        var written = Set<String>()
        let directory = outputDirectory
        let observer: NodeObserver? = allNodes ? { event in
            for (position, name) in event.step.node.outputs.enumerated() where !name.isEmpty && position < event.outputs.count {
                try NPY.write(event.outputs[position], to: (directory as NSString).appendingPathComponent(namer.fileName(for: name)))
                written.insert(name)
            }
        } : nil
        let clock = ContinuousClock()
        var times: [Double] = []
        var outputs: [String: Tensor] = [:]
        for _ in 0..<`repeat` {
            let start = clock.now
            outputs = try userFacing { try program.run(feeds, observer: observer) }
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
}
