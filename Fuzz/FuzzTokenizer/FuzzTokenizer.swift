import CZlib
import Foundation
import Models

/// CLIP's vocabulary, loaded once: `ACTION_CLIP_VOCAB` or Weights/bpe_simple_vocab_16e6.txt.gz next to Fuzz/.
private let tokenizer: CLIPTokenizer = {
    let path = ProcessInfo.processInfo.environment["ACTION_CLIP_VOCAB"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Weights/bpe_simple_vocab_16e6.txt.gz").path
    do { return try CLIPTokenizer(vocabularyPath: path) } catch { fatalError("cannot load the vocabulary: \(error)") }
}()

private let temporaryPath = NSTemporaryDirectory() + "fuzz-vocab-\(ProcessInfo.processInfo.processIdentifier).txt.gz"

/// libFuzzer entry point. The first byte picks the mode:
/// - even: the rest is text (UTF-8, invalid sequences repaired) -> `encode` and `tokenize`; every id must be
///   inside CLIP's vocabulary.
/// - 1 mod 4: the rest is gzip-compressed and read as a vocabulary file (the merge-list parser).
/// - 3 mod 4: the rest is written as-is and read as a vocabulary file (the gzip reader on arbitrary bytes).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let mode = bytes.first else { return 0 }
    let rest = Array(bytes.dropFirst())
    if mode % 2 == 0 {
        let text = String(decoding: rest, as: UTF8.self)
        for id in tokenizer.encode(text) where id < 0 || id > CLIPTokenizer.endOfText {
            fatalError("id \(id) outside the vocabulary")
        }
        if let row = try? tokenizer.tokenize(text), row.count != CLIPTokenizer.defaultContextLength {
            fatalError("tokenize returned \(row.count) ids")
        }
        return 0
    }
    defer { try? FileManager.default.removeItem(atPath: temporaryPath) }
    if mode % 4 == 1 {
        guard let file = gzopen(temporaryPath, "wb1") else { fatalError("cannot write \(temporaryPath)") }
        rest.withUnsafeBytes { buffer in _ = gzwrite(file, buffer.baseAddress, UInt32(buffer.count)) }
        gzclose(file)
    } else {
        FileManager.default.createFile(atPath: temporaryPath, contents: Data(rest))
    }
    _ = try? CLIPTokenizer(vocabularyPath: temporaryPath)
    return 0
}

/// SwiftPM's debug builds link an executable with `main` aliased to `FuzzTokenizer_main` (so tests can link
/// the module); libFuzzer's own `main` is then not used, so this one starts the libFuzzer driver.
@_cdecl("FuzzTokenizer_main")
public func fuzzTokenizerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzzTokenizer(UnsafeRawPointer(data), size)
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt
