import Models
import ONNXLoader

/// libFuzzer entry point: ONNX bytes -> `ONNXLoader.load(bytes:)` -> `GraphProgram` compile.
///
/// The compiled program is not run: a graph's own constants (ConstantOfShape, Expand, Range) may legally
/// ask for any amount of memory at run time, so a run is not bounded by the input size. Every error is
/// expected; only a crash, leak, timeout or oversized allocation is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNXLoad(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let model = try? ONNXLoader.load(bytes: bytes, baseDirectory: nil) else { return 0 }
    _ = try? GraphProgram(model: model)
    return 0
}

/// SwiftPM's debug builds link an executable with `main` aliased to `FuzzONNXLoad_main` (so tests can link
/// the module); libFuzzer's own `main` is then not used, so this one starts the libFuzzer driver.
@_cdecl("FuzzONNXLoad_main")
public func fuzzONNXLoadMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzzONNXLoad(UnsafeRawPointer(data), size)
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt
