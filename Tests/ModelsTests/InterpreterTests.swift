import Testing
import ONNXLoader
import Tensor
@testable import Models

/// Builds small graphs by hand to check what the interpreter decides before any op runs.
@Suite struct InterpreterCompileTests {
    static func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String = "", domain: String = "",
                     attributes: [String: Attribute] = [:]) -> ONNXNode {
        ONNXNode(name: name, opType: op, domain: domain, inputs: inputs, outputs: outputs, attributes: attributes)
    }

    static func model(_ nodes: [ONNXNode], inputs: [String] = ["x"], outputs: [String] = ["y"], opset: Int64 = 10,
                      initializers: [String: Tensor] = [:]) -> ONNXModel {
        let graph = ONNXGraph(
            name: "test",
            inputs: inputs.map { ValueInfo(name: $0, elementTypeCode: 1, shape: nil) },
            outputs: outputs.map { ValueInfo(name: $0, elementTypeCode: 1, shape: nil) },
            valueInfo: [], nodes: nodes, initializers: initializers,
            initializerNames: initializers.keys.sorted())
        return ONNXModel(irVersion: 5, opsetImports: ["": opset], producerName: "test", producerVersion: "", graph: graph)
    }

    @Test func listsEveryUnsupportedOperatorAtOnce() {
        let nodes = [
            Self.node("Frobnicate", ["x"], ["a"]), Self.node("Relu", ["a"], ["b"]),
            Self.node("Frobnicate", ["b"], ["c"]), Self.node("LSTM", ["c"], ["d"]),
            Self.node("Relu", ["d"], ["y"], domain: "com.example"),
        ]
        do {
            _ = try GraphProgram(model: Self.model(nodes))
            Issue.record("expected an error")
        } catch {
            let message = error.description
            #expect(message.contains("Frobnicate (2x)"))
            #expect(message.contains("LSTM (1x)"))
            #expect(message.contains("com.example.Relu (1x)"))
        }
    }

    @Test func rejectsOpsetOutsideRange() {
        #expect(throws: GraphError.self) { try GraphProgram(model: Self.model([Self.node("Relu", ["x"], ["y"])], opset: 18)) }
        #expect(throws: GraphError.self) { try GraphProgram(model: Self.model([Self.node("Relu", ["x"], ["y"])], opset: 5)) }
    }

    @Test func reportsDanglingInputsAndCycles() {
        do {
            _ = try GraphProgram(model: Self.model([Self.node("Add", ["x", "nowhere"], ["y"], name: "adder")]))
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("adder"))
            #expect(error.description.contains("nowhere"))
        }
        let cyclic = [Self.node("Relu", ["b"], ["a"], name: "first"), Self.node("Relu", ["a"], ["b"], name: "second"),
                      Self.node("Add", ["x", "b"], ["y"])]
        do {
            _ = try GraphProgram(model: Self.model(cyclic))
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("cycle"))
        }
    }

    @Test func duplicateProducersAreRejected() {
        let nodes = [Self.node("Relu", ["x"], ["y"]), Self.node("Neg", ["x"], ["y"], name: "again")]
        #expect(throws: GraphError.self) { try GraphProgram(model: Self.model(nodes)) }
    }

    @Test func ordersNodesTopologicallyKeepingFileOrderWhenValid() throws {
        // File order is reversed; the interpreter must still run producers first.
        let nodes = [Self.node("Neg", ["b"], ["y"], name: "last"), Self.node("Relu", ["a"], ["b"], name: "middle"),
                     Self.node("Sqrt", ["x"], ["a"], name: "first")]
        let program = try GraphProgram(model: Self.model(nodes))
        #expect(program.steps.map(\.node.name) == ["first", "middle", "last"])
        let sorted = try GraphProgram(model: Self.model(nodes.reversed()))
        #expect(sorted.steps.map(\.node.name) == ["first", "middle", "last"])
    }

    @Test func releasesIntermediatesAfterTheirLastReader() throws {
        let nodes = [Self.node("Relu", ["x"], ["a"], name: "n0"), Self.node("Neg", ["a"], ["b"], name: "n1"),
                     Self.node("Add", ["a", "b"], ["y"], name: "n2")]
        let program = try GraphProgram(model: Self.model(nodes))
        let slotOfA = try #require(program.slotNames.firstIndex(of: "a"))
        let slotOfB = try #require(program.slotNames.firstIndex(of: "b"))
        #expect(program.steps[2].releaseAfter.contains(slotOfA))
        #expect(program.steps[2].releaseAfter.contains(slotOfB))
        #expect(!program.steps[1].releaseAfter.contains(slotOfA))
        let slotOfY = try #require(program.slotNames.firstIndex(of: "y"))
        #expect(!program.steps.contains { $0.releaseAfter.contains(slotOfY) })
    }

    @Test func checksFeedsAgainstDeclarations() throws {
        var model = Self.model([Self.node("Relu", ["x"], ["y"])])
        model.graph.inputs = [ValueInfo(name: "x", elementTypeCode: 1, shape: [.fixed(1), .fixed(77)])]
        let program = try GraphProgram(model: model)
        // The leading (batch) dimension is free; the others must match.
        #expect(throws: GraphError.self) { try program.run(["x": try Tensor([Int64](repeating: 0, count: 77), shape: [1, 77])]) }
        #expect(throws: GraphError.self) { try program.run(["x": try Tensor([Float](repeating: 0, count: 76), shape: [1, 76])]) }
        #expect(throws: GraphError.self) { try program.run(["x": try Tensor([Float](repeating: 0, count: 77), shape: [77])]) }
        #expect(throws: GraphError.self) { try program.run([:]) }
        #expect(throws: GraphError.self) { try program.run(["x": Tensor(scalar: Float(1)), "extra": Tensor(scalar: Float(1))]) }
    }
}
