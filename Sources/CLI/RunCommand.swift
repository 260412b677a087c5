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

    func validate() throws {
        for input in inputs where !input.contains("=") {
            throw ValidationError("--input takes NAME=FILE.npy, got '\(input)'")
        }
    }

    func run() throws {
        var feeds: [String: Tensor] = [:]
        for input in inputs {
            guard let separator = input.firstIndex(of: "=") else { continue }
            let name = String(input[..<separator])
            let file = String(input[input.index(after: separator)...])
            feeds[name] = try userFacing { try NPY.read(path: file) }
        }
        let program = try userFacing(naming: model) { try GraphProgram(model: try ONNXLoader.load(contentsOf: model)) }
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
        let start = clock.now
        let outputs = try userFacing { try program.run(feeds, observer: observer) }
        let elapsed = (clock.now - start).seconds
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
