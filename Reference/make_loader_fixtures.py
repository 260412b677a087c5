#!/usr/bin/env python3
"""Writes the tiny ONNX files that Tests/ONNXLoaderTests uses.

Usage: <venv>/bin/python Reference/make_loader_fixtures.py [output-directory]
(default: Tests/ONNXLoaderTests/Fixtures next to this script's parent).

The values are deterministic and the Swift tests hard-code the same numbers; if you change a
value here, change it in Tests/ONNXLoaderTests/LoaderFixtureValues.swift too.
Broken models are built from raw TensorProto/NodeProto messages because onnx.helper would
refuse (or silently fix) some of the defects we want to test.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "Tests", "ONNXLoaderTests", "Fixtures")
IR = 8
OPSET = 13


def save(model, name):
    path = os.path.join(OUT, name)
    with open(path, "wb") as handle:
        handle.write(model.SerializeToString())
    print(f"{name}: {os.path.getsize(path)} bytes")


def model_of(graph, opsets=(("", OPSET),), ir=IR):
    model = helper.make_model(graph, producer_name="loader-fixtures", producer_version="1.0",
                              opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = ir
    return model


def raw(name, array):
    return numpy_helper.from_array(array, name)  # always raw_data


def identity_graph(initializers, nodes=None, inputs=None, outputs=None, name="g"):
    """A one-node graph x -> Identity -> y plus the given initializers/nodes."""
    nodes = nodes if nodes is not None else [helper.make_node("Identity", ["x"], ["y"])]
    inputs = inputs if inputs is not None else [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])]
    outputs = outputs if outputs is not None else [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]
    return helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)


def valid_model():
    initializers = [
        # raw_data, one per supported type
        raw("w_f32", (0.5 * np.arange(6, dtype=np.float32) - 1).reshape(2, 3)),
        raw("w_f64", np.array([1.25, -2.5, 1e-300], dtype=np.float64)),
        raw("w_i32", np.array([-2147483648, -1, 0, 2147483647], dtype=np.int32)),
        raw("w_i64", np.array([[-(2 ** 62), -1], [0, 2 ** 62 + 5]], dtype=np.int64)),
        raw("w_u8", np.array([0, 128, 255], dtype=np.uint8)),
        raw("w_i8", np.array([-128, 0, 127], dtype=np.int8)),
        raw("w_bool", np.array([True, False, False, True])),
        raw("w_f16", np.array([1.0, -2.0, 65504.0], dtype=np.float16)),
        raw("e_f32", np.zeros((0, 3), dtype=np.float32)),
        # typed fields
        helper.make_tensor("t_f32", TensorProto.FLOAT, [3], [1.5, -2.25, 3.0]),
        helper.make_tensor("t_f64", TensorProto.DOUBLE, [2], [0.1, -1e10]),
        helper.make_tensor("t_i32", TensorProto.INT32, [3], [7, -8, 9]),
        helper.make_tensor("t_i64", TensorProto.INT64, [2], [123456789012, -5]),
        helper.make_tensor("t_u8", TensorProto.UINT8, [3], [0, 200, 255]),
        helper.make_tensor("t_i8", TensorProto.INT8, [2], [-100, 100]),
        helper.make_tensor("t_bool", TensorProto.BOOL, [3], [True, False, True]),
        helper.make_tensor("t_f16", TensorProto.FLOAT16, [2], np.array([1.0, 0.5], dtype=np.float16)),
        helper.make_tensor("s_i64", TensorProto.INT64, [], [42]),
    ]
    for tensor in initializers[9:]:
        assert not tensor.HasField("raw_data"), tensor.name

    sub_graph = helper.make_graph([helper.make_node("Identity", ["a"], ["b"])], "sub",
                                  [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])])
    sparse = helper.make_sparse_tensor(helper.make_tensor("sv", TensorProto.FLOAT, [1], [1.0]),
                                       helper.make_tensor("si", TensorProto.INT64, [1], [0]), [4])
    attrs = helper.make_node("CustomAttrs", ["x", "", "w_f32"], ["attr_out"], name="attrs", domain="test.domain",
                             f=0.25, i=-7, s="hello",
                             t=helper.make_tensor("attr_t", TensorProto.INT32, [2], [5, 6]),
                             floats=[1.0, 2.5], ints=[1, -2, 3], strings=["a", "bc"],
                             g=sub_graph, graphs=[sub_graph], sparse=sparse,
                             tensors=[helper.make_tensor("tt", TensorProto.FLOAT, [1], [0.0])],
                             tp=helper.make_tensor_type_proto(TensorProto.FLOAT, [1]))
    nodes = [
        helper.make_node("Constant", [], ["cf"], name="const_f",
                         value=raw("cf_value", np.array([[[1, 2], [3, 4]]], dtype=np.float32))),
        helper.make_node("Constant", [], ["ci"], value=helper.make_tensor("ci_value", TensorProto.INT64, [2], [-1, 4])),
        helper.make_node("Constant", [], ["cvf"], value_float=2.5),
        helper.make_node("Add", ["x", "w_f32"], ["h"], name="add0"),
        helper.make_node("Relu", ["h"], ["out"]),
        helper.make_node("Identity", ["ci"], ["ci_id"], domain="ai.onnx"),
        attrs,
    ]
    graph = helper.make_graph(
        nodes, "valid_graph",
        # w_f32 is also listed as an input: the loader keeps it as an initializer only.
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("y", TensorProto.INT64, [2, None]),
         helper.make_tensor_value_info("w_f32", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("cf", TensorProto.FLOAT, [1, 2, 2])],
        initializer=initializers,
        value_info=[helper.make_tensor_value_info("h", TensorProto.FLOAT, None)])
    # "ai.onnx" is the long spelling of the default domain.
    return model_of(graph, opsets=(("ai.onnx", OPSET), ("test.domain", 1)))


def external_tensor(name, data_type, dims, location, offset, length):
    tensor = TensorProto(name=name, data_type=data_type, dims=dims)
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        if value is not None:
            entry = tensor.external_data.add()
            entry.key, entry.value = key, str(value)
    return tensor


def external_models():
    # Layout of external.data, written by hand so offsets are known:
    #   0: ext_a float32 [2,3] = arange(6) * 1.5   (24 B, aligned -> mapped in place)
    #  24: ext_b int64 [3] = [10, 20, 30]          (24 B, aligned)
    #  48: ext_u8 uint8 [3] = [1, 2, 3]            (3 B)
    #  51: ext_m float32 [2] = [-1, 0.25]          (8 B, misaligned -> copied)
    #  59: ext_bool bool [2] = bytes [0, 7]        (nonzero means true; must read as [false, true])
    blob = ((np.arange(6, dtype=np.float32) * 1.5).tobytes() + np.array([10, 20, 30], dtype=np.int64).tobytes()
            + bytes([1, 2, 3]) + np.array([-1, 0.25], dtype=np.float32).tobytes() + bytes([0, 7]))
    with open(os.path.join(OUT, "external.data"), "wb") as handle:
        handle.write(blob)
    tensors = [
        external_tensor("ext_a", TensorProto.FLOAT, [2, 3], "external.data", 0, 24),
        external_tensor("ext_b", TensorProto.INT64, [3], "./external.data", 24, 24),
        external_tensor("ext_u8", TensorProto.UINT8, [3], "external.data", 48, 3),
        external_tensor("ext_m", TensorProto.FLOAT, [2], "external.data", 51, 8),
        external_tensor("ext_bool", TensorProto.BOOL, [2], "external.data", 59, None),  # no length: to end of file
    ]
    save(model_of(identity_graph(tensors, name="external")), "external.onnx")
    print(f"external.data: {len(blob)} bytes")

    beyond = external_tensor("far", TensorProto.FLOAT, [2, 3], "external.data", 1000, 24)
    save(model_of(identity_graph([beyond])), "broken_external_offset.onnx")
    past_end = external_tensor("long", TensorProto.FLOAT, [2, 3], "external.data", 48, 24)
    save(model_of(identity_graph([past_end])), "broken_external_length.onnx")
    escape = external_tensor("escape", TensorProto.FLOAT, [2, 3], "../x.data", 0, 24)
    save(model_of(identity_graph([escape])), "broken_external_escape.onnx")
    absolute = external_tensor("absolute", TensorProto.FLOAT, [2, 3], "/etc/passwd", 0, 24)
    save(model_of(identity_graph([absolute])), "broken_external_absolute.onnx")
    missing = external_tensor("nofile", TensorProto.FLOAT, [2], "missing.data", 0, 8)
    save(model_of(identity_graph([missing])), "broken_external_missing.onnx")


def fp16_model():
    weight = raw("half", np.array([[0.5, -1.0], [2.0, 0.099975586]], dtype=np.float16))
    graph = helper.make_graph(
        [helper.make_node("Cast", ["half"], ["y"], to=TensorProto.FLOAT)], "fp16",
        [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])], initializer=[weight])
    save(model_of(graph), "fp16.onnx")


def broken_models():
    short = TensorProto(name="x_w", data_type=TensorProto.FLOAT, dims=[2, 3], raw_data=bytes(12))
    save(model_of(identity_graph([short])), "broken_dims_bytes.onnx")

    negative = TensorProto(name="neg", data_type=TensorProto.FLOAT, dims=[2, -3])
    save(model_of(identity_graph([negative])), "broken_negative_dim.onnx")

    few = TensorProto(name="few", data_type=TensorProto.FLOAT, dims=[2, 3], float_data=[1, 2, 3, 4, 5])
    save(model_of(identity_graph([few])), "broken_typed_count.onnx")

    huge = TensorProto(name="huge", data_type=TensorProto.FLOAT, dims=[1 << 40, 1 << 40], raw_data=bytes(4))
    save(model_of(identity_graph([huge])), "broken_huge_dims.onnx")

    strings = helper.make_tensor("names", TensorProto.STRING, [2], [b"a", b"b"])
    save(model_of(identity_graph([strings])), "broken_string_type.onnx")
    bf16 = TensorProto(name="bf", data_type=TensorProto.BFLOAT16, dims=[2], raw_data=bytes(4))
    save(model_of(identity_graph([bf16])), "broken_bfloat16.onnx")

    bad_constant = helper.make_node("Constant", [], ["y"], name="bad_const",
                                    value=TensorProto(name="v", data_type=TensorProto.FLOAT, dims=[4], raw_data=bytes(8)))
    save(model_of(identity_graph([], nodes=[bad_constant], inputs=[])), "broken_constant_bytes.onnx")

    dangling = [helper.make_node("Add", ["x", "missing_w"], ["y"], name="add_dangling")]
    save(model_of(identity_graph([], nodes=dangling)), "broken_dangling.onnx")

    cycle = [helper.make_node("Add", ["x", "b_out"], ["a_out"], name="node_a"),
             helper.make_node("Relu", ["a_out"], ["b_out"], name="node_b"),
             helper.make_node("Identity", ["b_out"], ["y"], name="node_c")]
    save(model_of(identity_graph([], nodes=cycle)), "broken_cycle.onnx")

    duplicate = [helper.make_node("Relu", ["x"], ["y"], name="first"),
                 helper.make_node("Neg", ["x"], ["y"], name="second")]
    save(model_of(identity_graph([], nodes=duplicate)), "broken_duplicate_output.onnx")

    shadow = [helper.make_node("Relu", ["x"], ["w"], name="shadowing"),
              helper.make_node("Identity", ["w"], ["y"])]
    save(model_of(identity_graph([raw("w", np.ones(1, dtype=np.float32))], nodes=shadow)),
         "broken_shadow_initializer.onnx")

    save(model_of(identity_graph([], nodes=[helper.make_node("Relu", ["x"], ["z"], name="relu")])),
         "broken_unproduced_output.onnx")

    empty_op = helper.make_node("Relu", ["x"], ["y"], name="nameless_op")
    empty_op.op_type = ""
    save(model_of(identity_graph([], nodes=[empty_op])), "broken_empty_op_type.onnx")

    save(model_of(identity_graph([]), opsets=(("", 22),)), "broken_opset.onnx")
    save(model_of(identity_graph([]), opsets=(("com.example", 1),)), "broken_no_default_opset.onnx")
    save(model_of(identity_graph([]), ir=99), "broken_ir_version.onnx")


def main():
    os.makedirs(OUT, exist_ok=True)
    save(valid_model(), "valid.onnx")
    fp16_model()
    external_models()
    broken_models()
    # The plain valid models must pass ONNX's own checker (valid.onnx has a custom-domain node and an
    # "ai.onnx"-spelled node domain, which the checker does not resolve; the broken ones are broken on purpose).
    onnx.checker.check_model(onnx.load(os.path.join(OUT, "fp16.onnx")))
    onnx.checker.check_model(os.path.join(OUT, "external.onnx"))


if __name__ == "__main__":
    main()
