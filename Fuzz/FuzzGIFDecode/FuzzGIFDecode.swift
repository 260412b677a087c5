import Foundation
import Models

/// One temporary file per fuzzing process: giflib reads from a path.
private let temporaryPath = NSTemporaryDirectory() + "fuzz-gif-\(ProcessInfo.processInfo.processIdentifier).gif"

/// libFuzzer entry point: bytes -> file -> `VideoReader.open` (GIF magic goes to giflib) -> composite
/// the first and last frames (which replays every frame on the canvas).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGIFDecode(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard FileManager.default.createFile(atPath: temporaryPath, contents: Data(bytes: start, count: count)) else {
        fatalError("cannot write \(temporaryPath)")
    }
    defer { try? FileManager.default.removeItem(atPath: temporaryPath) }
    guard let source = try? GIFFrameSource(path: temporaryPath) else { return 0 }
    guard let frames = try? source.frames(at: [0, source.frameCount - 1]) else { return 0 }
    for frame in frames where frame.width != source.width || frame.height != source.height {
        fatalError("frame \(frame.width)x\(frame.height) differs from the canvas \(source.width)x\(source.height)")
    }
    return 0
}

/// SwiftPM's debug builds link an executable with `main` aliased to `FuzzGIFDecode_main` (so tests can link
/// the module); libFuzzer's own `main` is then not used, so this one starts the libFuzzer driver.
@_cdecl("FuzzGIFDecode_main")
public func fuzzGIFDecodeMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzzGIFDecode(UnsafeRawPointer(data), size)
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt
