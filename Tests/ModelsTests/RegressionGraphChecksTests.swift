import Testing
import ONNXLoader
import Tensor
@testable import Models

/// Issue 5, graph checks: each malformed graph is an error that names the node, at compile or run time,
/// never a trap. (Cycle, dangling input and duplicate outputs are covered through real files in
/// ONNXLoaderTests/BrokenModelTests and InterpreterCompileTests; they are repeated here in one place.)
@Suite struct RegressionGraphChecksTests {
    typealias Build = InterpreterCompileTests

    /// Compiles and runs `nodes` with `x` fed; returns the error text.
    func failure(_ nodes: [ONNXNode], x: Tensor, initializers: [String: Tensor] = [:]) -> String? {
        do {
            let program = try GraphProgram(model: Build.model(nodes, initializers: initializers))
            _ = try program.run(["x": x])
            return nil
        } catch {
            return error.description
        }
    }

    static func input() throws -> Tensor { try Tensor((0..<12).map(Float.init), shape: [3, 4]) }

    @Test func cycleDanglingAndDuplicateOutputsNameTheNode() throws {
        let x = try Self.input()
        let cycle = [Build.node("Relu", ["x", "b"], ["a"], name: "first"), Build.node("Add", ["a", "x"], ["b"], name: "second"),
                     Build.node("Relu", ["b"], ["y"], name: "last")]
        let cycleText = failure(cycle, x: x) ?? ""
        #expect(cycleText.contains("cycle") && (cycleText.contains("first") || cycleText.contains("second")), "\(cycleText)")
        let dangling = failure([Build.node("Add", ["x", "ghost"], ["y"], name: "adder")], x: x) ?? ""
        #expect(dangling.contains("adder") && dangling.contains("ghost"), "\(dangling)")
        let duplicate = failure([Build.node("Relu", ["x"], ["y"], name: "one"), Build.node("Relu", ["x"], ["y"], name: "two")], x: x) ?? ""
        #expect(duplicate.contains("'y'") || duplicate.contains("two"), "\(duplicate)")
    }

    @Test func attributeOfTheWrongTypeNamesTheNode() throws {
        let x = try Self.input()
        let node = Build.node("Transpose", ["x"], ["y"], name: "flip", attributes: ["perm": .float(1)])
        let text = failure([node], x: x) ?? ""
        #expect(text.contains("flip") && text.contains("perm"), "\(text)")
        let softmax = Build.node("Softmax", ["x"], ["y"], name: "soft", attributes: ["axis": .string(Array("one".utf8))])
        let softText = failure([softmax], x: x) ?? ""
        #expect(softText.contains("soft") && softText.contains("axis"), "\(softText)")
    }

    @Test func reshapeWithTwoInferredDimensionsNamesTheNode() throws {
        let x = try Self.input()
        let shape = try Tensor([Int64(-1), -1], shape: [2])
        let text = failure([Build.node("Reshape", ["x", "shape"], ["y"], name: "reshaper")], x: x, initializers: ["shape": shape]) ?? ""
        #expect(text.contains("reshaper") && text.contains("-1"), "\(text)")
    }

    @Test func gatherIndexOutOfRangeNamesTheNode() throws {
        let x = try Self.input()
        for bad: Int64 in [3, -4, Int64.max, Int64.min] {
            let indices = try Tensor([Int64(0), bad], shape: [2])
            let text = failure([Build.node("Gather", ["x", "indices"], ["y"], name: "picker", attributes: ["axis": .int(0)])],
                               x: x, initializers: ["indices": indices]) ?? ""
            #expect(text.contains("picker") && text.contains("\(bad)"), "\(text)")
        }
    }

    @Test func splitSizesNotAddingUpNameTheNode() throws {
        let x = try Self.input()
        let node = Build.node("Split", ["x"], ["y", "z"], name: "splitter", attributes: ["axis": .int(1), "split": .ints([1, 2])])
        let text = failure([node], x: x) ?? ""
        #expect(text.contains("splitter") && (text.contains("4") || text.contains("sum")), "\(text)")
        let negative = Build.node("Split", ["x"], ["y", "z"], name: "negative", attributes: ["axis": .int(1), "split": .ints([5, -1])])
        let negativeText = failure([negative], x: x) ?? ""
        #expect(negativeText.contains("negative"), "\(negativeText)")
    }
}
