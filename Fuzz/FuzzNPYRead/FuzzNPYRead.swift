import Foundation
import Tensor

/// libFuzzer entry point: bytes -> `NPY.decode`, and a successful decode must re-encode to a file that
/// decodes to the same shape (round trip).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPYRead(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    guard let tensor = try? NPY.decode(data, path: "<fuzz>") else { return 0 }
    guard let again = try? NPY.decode(NPY.encode(tensor), path: "<fuzz round trip>"),
          again.shape == tensor.shape, again.dataType == tensor.dataType else {
        fatalError("NPY round trip changed shape \(tensor.shape) \(tensor.dataType)")
    }
    return 0
}

/// SwiftPM's debug builds link an executable with `main` aliased to `FuzzNPYRead_main` (so tests can link
/// the module); libFuzzer's own `main` is then not used, so this one starts the libFuzzer driver.
@_cdecl("FuzzNPYRead_main")
public func fuzzNPYReadMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzzNPYRead(UnsafeRawPointer(data), size)
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt
