import Foundation
import Testing
import Tensor
@testable import ONNXLoader

/// valid.onnx: every value below is the one Reference/make_loader_fixtures.py writes.
@Suite struct ValidModelTests {
    let model: ONNXModel

    init() throws {
        model = try ONNXLoader.load(contentsOf: fixture("valid.onnx"))
    }

    @Test func header() {
        #expect(model.irVersion == 8)
        // "ai.onnx" is normalised to the default domain "".
        #expect(model.opsetImports == ["": 13, "test.domain": 1])
        #expect(model.defaultOpset == 13)
        #expect(model.producerName == "loader-fixtures")
        #expect(model.producerVersion == "1.0")
        #expect(model.graph.name == "valid_graph")
    }

    @Test func interface() throws {
        let graph = model.graph
        // w_f32 is listed in graph.input too, but is kept only as an initializer.
        #expect(graph.inputs.map(\.name) == ["x", "y"])
        #expect(graph.inputs[0] == ValueInfo(name: "x", elementTypeCode: 1, shape: [.symbolic("N"), .fixed(3)]))
        #expect(graph.inputs[1] == ValueInfo(name: "y", elementTypeCode: 7, shape: [.fixed(2), .unknown]))
        #expect(graph.inputs[1].elementType == .int64)
        #expect(graph.outputs == [ValueInfo(name: "out", elementTypeCode: 1, shape: [.symbolic("N"), .fixed(3)]),
                                  ValueInfo(name: "cf", elementTypeCode: 1, shape: [.fixed(1), .fixed(2), .fixed(2)])])
        #expect(graph.valueInfo == [ValueInfo(name: "h", elementTypeCode: 1, shape: nil)])
        #expect(graph.initializerNames == ["w_f32", "w_f64", "w_i32", "w_i64", "w_u8", "w_i8", "w_bool", "w_f16", "e_f32",
                                           "t_f32", "t_f64", "t_i32", "t_i64", "t_u8", "t_i8", "t_bool", "t_f16", "s_i64"])
        #expect(graph.initializers.count == 18)
    }

    @Test func rawDataInitializers() throws {
        let f32 = try initializer(model, "w_f32")
        #expect(f32.dataType == .float32 && f32.shape == [2, 3])
        #expect(try f32.toArray(Float.self) == [-1, -0.5, 0, 0.5, 1, 1.5])
        let f64 = try initializer(model, "w_f64")
        #expect(try f64.toArray(Double.self) == [1.25, -2.5, 1e-300])
        #expect(try initializer(model, "w_i32").toArray(Int32.self) == [Int32.min, -1, 0, Int32.max])
        let i64 = try initializer(model, "w_i64")
        #expect(i64.shape == [2, 2])
        #expect(try i64.toArray(Int64.self) == [-(1 << 62), -1, 0, (1 << 62) + 5])
        #expect(try initializer(model, "w_u8").toArray(UInt8.self) == [0, 128, 255])
        #expect(try initializer(model, "w_i8").toArray(Int8.self) == [-128, 0, 127])
        #expect(try initializer(model, "w_bool").toArray(Bool.self) == [true, false, false, true])
        let f16 = try initializer(model, "w_f16")
        #expect(f16.dataType == .float16)
        #expect(halfBits(f16) == [0x3C00, 0xC000, 0x7BFF])
#if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))  // no Float16 there
        #expect(try f16.toArray(Float16.self).map(Float.init) == [1, -2, 65504])
        #endif
        let empty = try initializer(model, "e_f32")
        #expect(empty.shape == [0, 3] && empty.count == 0)
    }

    /// Initializer raw_data is never copied twice: read in place from the file's mapping when it is
    /// aligned for its element type, otherwise copied once into the weight arena (`WeightIndex`).
    /// Constant-node tensors still come from protobuf-c, which hands its block over.
    @Test func rawDataIsUsedInPlaceOrCopiedOnce() throws {
        for name in ["w_f32", "w_f64", "w_i32", "w_i64", "w_u8", "w_i8", "w_bool", "w_f16"] {
            let tensor = try initializer(model, name)
            let owner = try #require(keeper(tensor), "\(name) is not backed by the mapping or the weight arena")
            #expect(owner is MappedFile || owner is WeightArena, "\(name)")
            #expect(tensor.storage.byteCount == tensor.byteCount, "\(name)")
            let elementSize = tensor.dataType.byteSize
            #expect(Int(bitPattern: tensor.storage.pointer) % elementSize == 0, "\(name)")
            if owner is WeightArena { #expect(Int(bitPattern: tensor.storage.pointer) % 64 == 0, "\(name)") }
        }
        let constant = try #require(try model.graph.nodes[0].tensor("value"))
        #expect(isMalloced(constant))
    }

    /// With the index off, protobuf-c's raw_data blocks are taken over (the fallback path).
    @Test func rawDataIsTakenOverWithoutTheIndex() throws {
        let direct = try ONNXLoader.load(contentsOf: fixture("valid.onnx"), useWeightIndex: false)
        for name in ["w_f32", "w_f64", "w_i32", "w_i64", "w_u8", "w_i8", "w_bool", "w_f16"] {
            let tensor = try initializer(direct, name)
            #expect(isMalloced(tensor), "\(name) was copied instead of taken over")
            #expect(Int(bitPattern: tensor.storage.pointer) % 16 == 0, "\(name)")
        }
    }

    @Test func typedFieldInitializers() throws {
        #expect(try initializer(model, "t_f32").toArray(Float.self) == [1.5, -2.25, 3.0])
        #expect(try initializer(model, "t_f64").toArray(Double.self) == [0.1, -1e10])
        #expect(try initializer(model, "t_i32").toArray(Int32.self) == [7, -8, 9])
        #expect(try initializer(model, "t_i64").toArray(Int64.self) == [123456789012, -5])
        #expect(try initializer(model, "t_u8").toArray(UInt8.self) == [0, 200, 255])
        #expect(try initializer(model, "t_i8").toArray(Int8.self) == [-100, 100])
        #expect(try initializer(model, "t_bool").toArray(Bool.self) == [true, false, true])
        #expect(halfBits(try initializer(model, "t_f16")) == [0x3C00, 0x3800])
        let scalar = try initializer(model, "s_i64")
        #expect(scalar.isScalar && scalar.shape == [])
        #expect(try scalar.toArray(Int64.self) == [42])
        for name in ["t_f32", "t_i64", "t_f16", "s_i64"] {
            #expect(isAllocated(try initializer(model, name)), "\(name)")
        }
    }

    @Test func constantNodes() throws {
        let nodes = model.graph.nodes
        #expect(nodes.map(\.opType) == ["Constant", "Constant", "Constant", "Add", "Relu", "Identity", "CustomAttrs"])
        #expect(nodes[0].name == "const_f" && nodes[0].outputs == ["cf"] && nodes[0].inputs.isEmpty)
        let value = try #require(try nodes[0].tensor("value"))
        #expect(value.shape == [1, 2, 2])
        #expect(try value.toArray(Float.self) == [1, 2, 3, 4])
        // Unnamed node: the proto2 NULL name becomes "".
        #expect(nodes[1].name == "")
        #expect(try #require(try nodes[1].tensor("value")).toArray(Int64.self) == [-1, 4])
        #expect(try nodes[2].float("value_float") == 2.5)
        #expect(nodes[3].name == "add0" && nodes[3].inputs == ["x", "w_f32"] && nodes[3].outputs == ["h"])
        // A node written with domain "ai.onnx" is in the default domain.
        #expect(nodes[5].domain == "")
    }

    @Test func everyAttributeKind() throws {
        let node = try #require(model.graph.nodes.last)
        #expect(node.name == "attrs" && node.domain == "test.domain")
        #expect(node.inputs == ["x", "", "w_f32"], "an omitted optional input stays as \"\"")
        #expect(try node.float("f") == 0.25)
        #expect(try node.int("i") == -7)
        #expect(try node.string("s") == "hello")
        #expect(try #require(try node.tensor("t")).toArray(Int32.self) == [5, 6])
        #expect(try node.floats("floats") == [1.0, 2.5])
        #expect(try node.ints("ints") == [1, -2, 3])
        guard case .strings(let strings)? = node.attributes["strings"] else {
            Issue.record("strings attribute is \(String(describing: node.attributes["strings"]))")
            return
        }
        #expect(strings == [Array("a".utf8), Array("bc".utf8)])
        let unsupported: [String: String] = ["g": "GRAPH", "graphs": "GRAPHS", "sparse": "SPARSE_TENSOR",
                                             "tensors": "TENSORS", "tp": "TYPE_PROTO"]
        for (name, kind) in unsupported {
            #expect(node.attributes[name]?.kindName == kind, "\(name)")
        }
        #expect(node.attributes.count == 12)
        // Wrong-kind access is an AttributeError, not a trap.
        #expect(throws: AttributeError.self) { try node.int("f") }
    }

    @Test func fp16Initializer() throws {
        let model = try ONNXLoader.load(contentsOf: fixture("fp16.onnx"))
        let half = try initializer(model, "half")
        #expect(half.dataType == .float16 && half.shape == [2, 2])
        #expect(halfBits(half) == [0x3800, 0xBC00, 0x4000, 0x2E66])
#if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))  // no Float16 there
        #expect(try half.toArray(Float16.self).map(Float.init) == [0.5, -1, 2, 0.0999755859375])
        #endif
        #expect(keeper(half) is MappedFile || keeper(half) is WeightArena)
        #expect(model.graph.inputs.isEmpty)
    }

    @Test func loadFromBytesMatchesLoadFromFile() throws {
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture("valid.onnx"))))
        let fromBytes = try loadBytes(data)
        #expect(fromBytes.graph.initializerNames == model.graph.initializerNames)
        #expect(try initializer(fromBytes, "w_f32").toArray(Float.self) == [-1, -0.5, 0, 0.5, 1, 1.5])
    }

    @Test func summary() {
        let summary = model.summary
        #expect(summary.opTypeCounts == ["Constant": 3, "Add": 1, "Relu": 1, "Identity": 1, "test.domain.CustomAttrs": 1])
        #expect(summary.opTypeHistogram.first?.opType == "Constant")
        #expect(summary.opTypeHistogram.map(\.count) == [3, 1, 1, 1, 1])
        #expect(summary.nodeCount == 7)
        #expect(summary.initializerCount == 18)
        #expect(summary.parameterCount == 51)
        #expect(summary.parameterBytes == 188)
        #expect(summary.parameterBytesByType[.float32] == 24 + 12)
        #expect(summary.parameterBytesByType[.int64] == 32 + 16 + 8)
        #expect(summary.constantNodeCount == 3)
        #expect(summary.constantBytes == 32)
    }
}
