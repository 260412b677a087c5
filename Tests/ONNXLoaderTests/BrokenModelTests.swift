import Foundation
import Testing
import Tensor
@testable import ONNXLoader

/// Each broken fixture must fail with its own error, and the message must name the culprit.
@Suite struct BrokenModelTests {
    @Test func bytesDoNotMatchDims() {
        let error = loadError(fixture("broken_dims_bytes.onnx"))
        #expect(error == .invalidTensor(tensor: "initializer 'x_w'",
                                        problem: "12 bytes of raw_data for shape [2,3] float32 (expected 24)"))
        #expect(error?.description == "initializer 'x_w': 12 bytes of raw_data for shape [2,3] float32 (expected 24)")
    }

    @Test func negativeDimension() {
        let error = loadError(fixture("broken_negative_dim.onnx"))
        #expect(error == .invalidTensor(tensor: "initializer 'neg'", problem: "negative dimension -3 in shape [2,-3]"))
    }

    @Test func typedValueCountMismatch() {
        let error = loadError(fixture("broken_typed_count.onnx"))
        #expect(error == .invalidTensor(tensor: "initializer 'few'",
                                        problem: "5 float_data values for shape [2,3] float32 (expected 6)"))
    }

    @Test func elementCountOverflow() {
        let error = loadError(fixture("broken_huge_dims.onnx"))
        guard case .invalidTensor(let tensor, let problem)? = error else {
            Issue.record("unexpected result \(String(describing: error))")
            return
        }
        #expect(tensor == "initializer 'huge'")
        #expect(problem.contains("more than \(Shape.maximumElementCount) elements"))
    }

    @Test func unsupportedDataTypes() {
        #expect(loadError(fixture("broken_string_type.onnx"))
                == .unsupportedDataType(tensor: "initializer 'names'", typeName: "string"))
        let bfloat = loadError(fixture("broken_bfloat16.onnx"))
        #expect(bfloat == .unsupportedDataType(tensor: "initializer 'bf'", typeName: "bfloat16"))
        #expect(bfloat?.description == "initializer 'bf': data type bfloat16 is not supported")
    }

    @Test func constantAttributeTensorIsChecked() {
        let error = loadError(fixture("broken_constant_bytes.onnx"))
        #expect(error == .invalidTensor(tensor: "node bad_const (Constant) attribute 'value'",
                                        problem: "8 bytes of raw_data for shape [4] float32 (expected 16)"))
    }

    @Test func danglingInput() {
        let error = loadError(fixture("broken_dangling.onnx"))
        #expect(error == .danglingInput(node: "add_dangling (Add)", input: "missing_w"))
        #expect(error?.description.contains("'missing_w'") == true)
    }

    @Test func cycle() {
        let error = loadError(fixture("broken_cycle.onnx"))
        guard case .cycle(let node)? = error else {
            Issue.record("unexpected result \(String(describing: error))")
            return
        }
        // node_c only reads the cycle; it is not on it.
        #expect(node == "node_a (Add)" || node == "node_b (Relu)")
    }

    @Test func duplicateOutput() {
        #expect(loadError(fixture("broken_duplicate_output.onnx"))
                == .duplicateValue(name: "y", first: "node first (Relu)", second: "node second (Neg)"))
    }

    @Test func outputShadowingAnInitializer() {
        #expect(loadError(fixture("broken_shadow_initializer.onnx"))
                == .duplicateValue(name: "w", first: "an initializer", second: "node shadowing (Relu)"))
    }

    @Test func unproducedGraphOutput() {
        #expect(loadError(fixture("broken_unproduced_output.onnx")) == .unproducedOutput(name: "y"))
    }

    @Test func emptyOpType() {
        let error = loadError(fixture("broken_empty_op_type.onnx"))
        #expect(error == .invalidNode(node: "'nameless_op'", problem: "empty op_type"))
    }

    @Test func opsetAndIRVersion() {
        #expect(loadError(fixture("broken_opset.onnx")) == .unsupportedOpset(22, supported: 1...21))
        #expect(loadError(fixture("broken_no_default_opset.onnx")) == .missingDefaultOpset)
        #expect(loadError(fixture("broken_ir_version.onnx"))
                == .unsupportedIRVersion(99, supported: ONNXLoader.supportedIRVersions))
    }
}
