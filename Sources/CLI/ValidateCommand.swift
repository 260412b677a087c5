import ArgumentParser
import Foundation
import Models
import ONNXLoader
import Tensor

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Run a graph on a reference dump's inputs and compare every dumped tensor.",
        discussion: """
        The reference directory is written by Reference/dump_reference.py (manifest.json, inputs/, \
        outputs/, and nodes/ when dumped with --all-nodes). One line is printed per compared tensor \
        with max abs error and max relative error (max|a-b| / max|b|). A tensor fails when \
        max|a-b| > atol + rtol * max|b|, when shapes or types differ, or when infinities/NaNs disagree. \
        Exit code 1 if any tensor fails. By default the graph runs exactly as exported (no rewrites), \
        so every dumped node is checked. --fused runs the rewritten graph (ACTION_CLIP_FUSE and \
        ACTION_CLIP_DISABLE_REWRITES apply): graph outputs and the node outputs that survive are \
        checked, and dumped nodes that were fused away are counted, not failed.
        """
    )

    @Argument(help: "The ONNX model file.")
    var model: String

    @Option(name: .customLong("reference"), help: "Directory written by Reference/dump_reference.py.")
    var reference: String

    @Option(help: "Relative tolerance (against the reference tensor's largest magnitude).")
    var rtol: Double = 1e-4

    @Option(help: "Absolute tolerance.")
    var atol: Double = 1e-6

    @Flag(help: "Validate the rewritten (fused) graph instead of the graph as exported.")
    var fused = false

    @OptionGroup var precisionOption: PrecisionOption

    func validate() throws {
        guard rtol >= 0, atol >= 0, rtol.isFinite, atol.isFinite else {
            throw ValidationError("--rtol and --atol must be finite and non-negative")
        }
    }

    func run() throws {
        precisionOption.apply()
        let dump = try userFacing { try ReferenceDump(directory: reference) }
        let feeds = try userFacing { try dump.loadInputs() }
        let options: RewriteOptions = fused ? .fromEnvironment() : .none
        let program = try userFacing(naming: model) { try GraphProgram(model: try ONNXLoader.load(contentsOf: model), options: options) }
        // Values some step still produces; a dumped node outside this set was fused away.
        let produced = Set(program.steps.flatMap(\.node.outputs))
        let nodeEntries = Dictionary(dump.nodes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var compared = 0
        var failed = 0
        var seen = Set<String>()
        let (rtol, atol) = (self.rtol, self.atol)

        func check(_ name: String, _ actual: Tensor, path: String) throws {
            let expected = try NPY.read(path: path)
            let result = TensorComparison(actual: actual, expected: expected)
            let ok = result.passes(relativeTolerance: rtol, absoluteTolerance: atol)
            compared += 1
            if !ok { failed += 1 }
            var line = String(format: "%@  %-48@ max_abs %.3e  max_rel %.3e", ok ? "ok  " : "FAIL",
                              name as NSString, result.maxAbsolute, result.maxRelative)
            if !result.shapeMatches { line += "  shape \(result.actualShape) vs \(result.expectedShape)" }
            if !result.dataTypeMatches { line += "  type \(actual.dataType) vs \(expected.dataType)" }
            if result.nonFiniteMismatches > 0 { line += "  \(result.nonFiniteMismatches) inf/nan mismatches" }
            print(line)
        }

        let observer: NodeObserver? = nodeEntries.isEmpty ? nil : { event in
            for (position, name) in event.step.node.outputs.enumerated() where position < event.outputs.count {
                guard let entry = nodeEntries[name] else { continue }
                seen.insert(name)
                try check(name, event.outputs[position], path: dump.path(of: entry))
            }
        }
        let outputs = try userFacing { try program.run(feeds, observer: observer) }
        for entry in dump.outputs {
            guard let actual = outputs[entry.name] else {
                print("FAIL  \(entry.name): not an output of this graph")
                failed += 1
                continue
            }
            try userFacing { try check(entry.name + " (output)", actual, path: dump.path(of: entry)) }
        }
        var fusedAway = 0
        for entry in dump.nodes where !seen.contains(entry.name) && !outputs.keys.contains(entry.name) {
            if fused && !produced.contains(entry.name) {
                fusedAway += 1
                continue
            }
            print("FAIL  \(entry.name): dumped by the reference but never computed here")
            failed += 1
        }
        if fused { print("\(fusedAway) dumped node outputs were fused away (not compared)") }
        print("\(compared - min(failed, compared)) passed, \(failed) failed")
        if failed > 0 { throw ExitCode(1) }
    }
}
