import CZlib
import Foundation

/// Reads a whole gzip file through zlib's `gzread`, with a bound on the decompressed size.
enum GzipFile {
    /// Decompresses `path` and returns its bytes.
    ///
    /// zlib's gz* functions silently pass non-gzip files through and report a truncated stream only as a
    /// sticky `Z_BUF_ERROR`, so both are checked explicitly: a plain-text or cut-off file is an error here.
    static func read(path: String, maximumBytes: Int) throws(TokenizerError) -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .vocabularyNotFound(path: path)
        }
        guard !isDirectory.boolValue else { throw .vocabularyUnreadable(path: path, reason: "it is a directory") }
        guard let file = gzopen(path, "rb") else {
            throw .vocabularyUnreadable(path: path, reason: "cannot open it (\(String(cString: strerror(errno))))")
        }
        var closed = false
        defer { if !closed { gzclose(file) } }
        gzbuffer(file, 1 << 17)

        let chunkSize = 1 << 20
        var output = [UInt8]()
        output.reserveCapacity(4 << 20)
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let count = chunk.withUnsafeMutableBytes { buffer in
                gzread(file, buffer.baseAddress, UInt32(chunkSize))
            }
            if count < 0 { throw .vocabularyUnreadable(path: path, reason: zlibMessage(file)) }
            if count == 0 { break }
            if output.isEmpty && gzdirect(file) != 0 {
                throw .vocabularyUnreadable(path: path, reason: "it is not gzip-compressed")
            }
            guard output.count + Int(count) <= maximumBytes else {
                throw .vocabularyUnreadable(
                    path: path, reason: "it decompresses to more than \(maximumBytes) bytes (CLIP's is 3.2 MB)")
            }
            output.append(contentsOf: chunk[0..<Int(count)])
        }
        var errorNumber: Int32 = Z_OK
        _ = gzerror(file, &errorNumber)
        if errorNumber != Z_OK { throw .vocabularyUnreadable(path: path, reason: zlibMessage(file)) }
        closed = true
        let closeStatus = gzclose(file)
        guard closeStatus == Z_OK else {
            throw .vocabularyUnreadable(path: path, reason: "zlib reported error \(closeStatus) at the end of the stream")
        }
        guard !output.isEmpty else { throw .vocabularyUnreadable(path: path, reason: "it is empty") }
        return output
    }

    private static func zlibMessage(_ file: gzFile) -> String {
        var errorNumber: Int32 = Z_OK
        guard let message = gzerror(file, &errorNumber) else { return "zlib error \(errorNumber)" }
        let text = String(cString: message)
        if errorNumber == Z_BUF_ERROR { return "the gzip stream is truncated (\(text))" }
        if errorNumber == Z_DATA_ERROR { return "the gzip data is corrupt (\(text))" }
        return text.isEmpty ? "zlib error \(errorNumber)" : text
    }
}
