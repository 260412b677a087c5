import Foundation
import ONNXLoader
import Tensor

/// On-disk cache of text features, so that a second run with the same labels skips the text
/// network.
///
/// Layout: one file per (text model, token matrix), i.e. per model and label set, in
/// `$XDG_CACHE_HOME/action-clip/` (default `~/.cache/action-clip/`), named
/// `text-<first 16 hex of the model sha256>-<first 32 hex of the sha256 of the token ids, their
/// shape, the engine's numerics revision and kernel variant>.features`.
/// The key is the model file's SHA-256 and every row's 77 token ids (not the label strings), so a
/// tokenizer or template change is a miss rather than a stale hit; `numericsRevision` does the
/// same for an engine change that moves the features' last bits.
///
/// File format, little-endian:
/// ```
/// offset  size           field
/// 0       8              magic "ACLIPTXF"
/// 8       4              version (UInt32, 1)
/// 12      32             model SHA-256 (raw bytes)
/// 44      4              rows R (UInt32)
/// 48      4              tokens per row T (UInt32, 77)
/// 52      4              feature width D (UInt32)
/// 56      8·R·T          token ids (Int64), compared in full on lookup
/// ..      4·R·D          features (Float32)
/// ..      32             SHA-256 of every byte above
/// ```
/// A file that fails any check (magic, version, model, sizes, tokens, checksum) is never
/// trusted: the lookup warns, reports a miss, and the next store rewrites it. Stores write a
/// temporary file in the same directory and rename it into place, so a reader never sees a
/// partial file. Failing to write (read-only directory) only warns.
///
/// Size: every new label set adds a file (about 0.4 MB for 10 labels), and files of an older
/// numerics revision are never found again, so after each store the least recently used feature
/// files (by modification time, which a hit refreshes) are deleted until at most `maximumFiles`
/// files and `maximumBytes` bytes remain. Only file names this cache writes are counted or deleted.
public struct TextFeatureCache: Sendable {
    /// Why a cache file could not be used or written (reported as a warning, never fatal).
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static let magic = Array("ACLIPTXF".utf8)
    public static let version: UInt32 = 1
    /// Bumped whenever an engine change alters the rounding of the text features (a kernel's
    /// summation order, a rewrite on the text path), so a cached feature is always bit for bit what
    /// this build would compute and `--no-cache` prints the same probabilities. Part of the file
    /// name: files of another revision are not found (no warning) and are rewritten under the new
    /// name. 2: the skinny kernel sums its k-slices in a fixed order (working session 6). 3: the
    /// attention's row softmax in AVX2+FMA (`Sources/CKernels/Softmax.c`, working session 7).
    /// 4: the packed GEMM on AVX-512 CPUs (`Sources/CKernels/PackedGEMM.c`, working session 8).
    /// 5: sgemm's column blocks (`BLAS.columnBlocks`, working session 10).
    public static let numericsRevision: UInt32 = 5

    /// The kernel choices of this process that change the features' rounding: whether the loader
    /// packs MatMul weights and which kernel multiplies them (`bf16-avx512` under `--precision
    /// bf16`), the AVX2 switch, and the thread count (sgemm's blocks depend on it:
    /// `BLAS.columnBlocks`). Hashed into the file name with the revision, so a run with
    /// `ACTION_CLIP_PACK_WEIGHTS=0`, `ACTION_CLIP_AVX2=0`, another `--threads` or another
    /// `--precision` never reads features another kernel or split computed. A cache takes the
    /// value current when it is made (`numericsVariant`), after the command set the thread count.
    public static var currentNumericsVariant: String {
        let packing = WeightPacking.enabledByEnvironment ? PackedGEMM.path.rawValue : "off"
        return "packed=\(packing) avx2=\(CPUFeatures.avx2) threads=\(Threading.threadCount)"
    }
    static let headerSize = 56
    static let checksumSize = 32

    /// Default bounds of the directory's feature files: 256 label sets, 256 MiB.
    public static let defaultMaximumFiles = 256
    public static let defaultMaximumBytes = 256 << 20

    public let directory: String
    /// Feature files kept in `directory` after a store (all models together).
    public let maximumFiles: Int
    /// Bytes of feature files kept in `directory` after a store.
    public let maximumBytes: Int
    /// Hex SHA-256 of the text model file.
    public let modelSHA256: String
    /// `currentNumericsVariant` when this cache was made; part of every file name it uses.
    public let numericsVariant: String
    let modelDigest: [UInt8]
    /// Where warnings go (stderr by default).
    public let warn: @Sendable (String) -> Void

    /// `$XDG_CACHE_HOME/action-clip` when XDG_CACHE_HOME is an absolute path (the XDG spec says
    /// to ignore relative ones), else `$HOME/.cache/action-clip`.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return (xdg as NSString).appendingPathComponent("action-clip")
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return ((home as NSString).appendingPathComponent(".cache") as NSString).appendingPathComponent("action-clip")
    }

    public static let standardErrorWarning: @Sendable (String) -> Void = { message in
        FileHandle.standardError.write(Data("action-clip: warning: \(message)\n".utf8))
    }

    /// A cache in `directory` for the text model with this SHA-256; `warn` receives one line per ignored file.
    public init(directory: String = TextFeatureCache.defaultDirectory(), modelSHA256: String,
                maximumFiles: Int = TextFeatureCache.defaultMaximumFiles, maximumBytes: Int = TextFeatureCache.defaultMaximumBytes,
                warn: @escaping @Sendable (String) -> Void = TextFeatureCache.standardErrorWarning) throws {
        guard let digest = Self.bytes(hex: modelSHA256), digest.count == 32 else {
            throw Failure(description: "text feature cache: '\(modelSHA256)' is not a SHA-256 hex digest")
        }
        self.directory = directory
        self.maximumFiles = max(1, maximumFiles)
        self.maximumBytes = max(0, maximumBytes)
        self.modelSHA256 = modelSHA256.lowercased()
        self.modelDigest = digest
        self.warn = warn
        numericsVariant = Self.currentNumericsVariant
    }

    /// The cache file for a token matrix.
    public func path(for tokens: Tensor) -> String {
        var hasher = SHA256()
        hasher.update(UnsafeRawBufferPointer(tokens.int64s))
        let shape = tokens.shape.map { Int64($0).littleEndian }
        shape.withUnsafeBytes { hasher.update($0) }
        withUnsafeBytes(of: Self.numericsRevision.littleEndian) { hasher.update($0) }
        Array(numericsVariant.utf8).withUnsafeBytes { hasher.update($0) }
        let tokenHash = hasher.finalizeHex()
        let name = "text-\(modelSHA256.prefix(16))-\(tokenHash.prefix(32)).features"
        return (directory as NSString).appendingPathComponent(name)
    }

    /// The cached features for `tokens` ([R, 77] int64), or nil on a miss. A file that exists
    /// but fails a check is reported through `warn` and treated as a miss.
    public func lookup(_ tokens: Tensor) -> Tensor? {
        let filePath = path(for: tokens)
        guard FileManager.default.fileExists(atPath: filePath) else { return nil }
        guard let data = FileManager.default.contents(atPath: filePath) else {
            warn("text feature cache \(filePath): cannot read it; recomputing")
            return nil
        }
        do {
            let features = try decode(data, tokens: tokens)
            // A hit counts as a use: the file moves to the back of the eviction order.
            _ = utimensat(AT_FDCWD, filePath, nil, 0)
            return features
        } catch {
            warn("text feature cache \(filePath): \(error.description); ignoring it and recomputing")
            return nil
        }
    }

    /// Writes `features` ([R, D] float32) for `tokens` atomically. Failures only warn.
    public func store(_ features: Tensor, for tokens: Tensor) {
        let filePath = path(for: tokens)
        do {
            let data = try encode(features, tokens: tokens)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let temporary = (directory as NSString).appendingPathComponent(
                ".\((filePath as NSString).lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
            guard FileManager.default.createFile(atPath: temporary, contents: data) else {
                throw Failure(description: "cannot create \(temporary)")
            }
            if rename(temporary, filePath) != 0 {
                let reason = String(cString: strerror(errno))
                try? FileManager.default.removeItem(atPath: temporary)
                throw Failure(description: "cannot rename into place: \(reason)")
            }
            prune(keeping: filePath)
        } catch let error as Failure {
            warn("text feature cache \(filePath): not written: \(error.description)")
        } catch {
            warn("text feature cache \(filePath): not written: \((error as NSError).localizedDescription)")
        }
    }

    /// Cached features for `tokens`, or `compute(tokens)` stored for next time.
    public func features(for tokens: Tensor, compute: (Tensor) throws -> Tensor) rethrows -> (features: Tensor, hit: Bool) {
        if let cached = lookup(tokens) { return (cached, true) }
        let computed = try compute(tokens)
        store(computed, for: tokens)
        return (computed, false)
    }

    // MARK: Size

    /// Deletes the least recently used feature files until at most `maximumFiles` files and
    /// `maximumBytes` bytes remain, never `kept` (the file just written). Housekeeping only:
    /// a file that cannot be listed or deleted (another process got there first) is skipped.
    func prune(keeping kept: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        var entries: [(modified: Date, path: String, bytes: Int)] = []
        for name in names where Self.isFeatureFileName(name) {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  attributes[.type] as? FileAttributeType == .typeRegular else { continue }
            entries.append((attributes[.modificationDate] as? Date ?? .distantPast, path,
                            (attributes[.size] as? NSNumber)?.intValue ?? 0))
        }
        var count = entries.count
        var bytes = entries.reduce(0) { $0 + $1.bytes }
        // Oldest first; equal times (the clock's granularity) in name order, so the choice is stable.
        for entry in entries.sorted(by: { ($0.modified, $0.path) < ($1.modified, $1.path) }) where entry.path != kept {
            guard count > maximumFiles || bytes > maximumBytes else { break }
            if (try? FileManager.default.removeItem(atPath: entry.path)) != nil {
                count -= 1
                bytes -= entry.bytes
            }
        }
    }

    /// `text-<16 hex>-<32 hex>.features`: the names `path(for:)` makes, and nothing else.
    static func isFeatureFileName(_ name: String) -> Bool {
        let characters = Array(name.utf8)
        guard characters.count == 5 + 16 + 1 + 32 + 9, name.hasPrefix("text-"), name.hasSuffix(".features"),
              characters[21] == UInt8(ascii: "-") else { return false }
        let hexDigits = characters[5..<21] + characters[22..<54]
        return hexDigits.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }

    // MARK: Format

    func encode(_ features: Tensor, tokens: Tensor) throws(Failure) -> Data {
        guard tokens.rank == 2, tokens.dataType == .int64, features.rank == 2, features.dataType == .float32,
              features.shape[0] == tokens.shape[0] else {
            throw Failure(description: "features \(features.dataType)\(features.shape) do not match tokens \(tokens.dataType)\(tokens.shape)")
        }
        var data = Data()
        data.reserveCapacity(Self.headerSize + tokens.byteCount + features.byteCount + Self.checksumSize)
        data.append(contentsOf: Self.magic)
        Self.append(Self.version, to: &data)
        data.append(contentsOf: modelDigest)
        Self.append(UInt32(tokens.shape[0]), to: &data)
        Self.append(UInt32(tokens.shape[1]), to: &data)
        Self.append(UInt32(features.shape[1]), to: &data)
        for value in tokens.int64s { Self.append(value, to: &data) }
        for value in features.floats { Self.append(value.bitPattern, to: &data) }
        var hasher = SHA256()
        hasher.update(data)
        data.append(contentsOf: Self.bytes(hex: hasher.finalizeHex()) ?? [])
        return data
    }

    func decode(_ data: Data, tokens: Tensor) throws(Failure) -> Tensor {
        let bytes = [UInt8](data)
        guard bytes.count >= Self.headerSize + Self.checksumSize else {
            throw Failure(description: "truncated (\(bytes.count) bytes)")
        }
        guard Array(bytes[0..<8]) == Self.magic else { throw Failure(description: "not a text feature cache file (bad magic)") }
        let version = Self.read(UInt32.self, bytes, at: 8)
        guard version == Self.version else { throw Failure(description: "format version \(version), expected \(Self.version)") }
        guard Array(bytes[12..<44]) == modelDigest else { throw Failure(description: "written for another text model") }
        let rows = Int(Self.read(UInt32.self, bytes, at: 44))
        let tokenWidth = Int(Self.read(UInt32.self, bytes, at: 48))
        let width = Int(Self.read(UInt32.self, bytes, at: 52))
        guard tokens.rank == 2, rows == tokens.shape[0], tokenWidth == tokens.shape[1] else {
            throw Failure(description: "holds \(rows)x\(tokenWidth) tokens, expected \(tokens.shape)")
        }
        guard width > 0, width <= 1 << 16 else { throw Failure(description: "implausible feature width \(width)") }
        let expectedSize = Self.headerSize + rows * tokenWidth * 8 + rows * width * 4 + Self.checksumSize
        guard bytes.count == expectedSize else {
            throw Failure(description: "\(bytes.count) bytes, expected \(expectedSize) (truncated or padded)")
        }
        let payloadEnd = expectedSize - Self.checksumSize
        var hasher = SHA256()
        bytes.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<payloadEnd])) }
        guard Self.bytes(hex: hasher.finalizeHex()) == Array(bytes[payloadEnd...]) else {
            throw Failure(description: "checksum mismatch (corrupt)")
        }
        let tokenValues = tokens.int64s
        for index in 0..<(rows * tokenWidth) where Self.read(Int64.self, bytes, at: Self.headerSize + index * 8) != tokenValues[index] {
            throw Failure(description: "token ids differ from the requested ones (hash collision or foreign file)")
        }
        let features: Tensor
        do { features = try Tensor.uninitialized(.float32, shape: [rows, width]) } catch {
            throw Failure(description: "cannot allocate [\(rows), \(width)] features")
        }
        let destination = features.mutableFloats
        let featureStart = Self.headerSize + rows * tokenWidth * 8
        for index in 0..<(rows * width) {
            destination[index] = Float(bitPattern: Self.read(UInt32.self, bytes, at: featureStart + index * 4))
        }
        return features
    }

    static func append<Value: FixedWidthInteger>(_ value: Value, to data: inout Data) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }

    static func read<Value: FixedWidthInteger>(_: Value.Type, _ bytes: [UInt8], at offset: Int) -> Value {
        var value: Value = 0
        for index in (0..<MemoryLayout<Value>.size).reversed() { value = value << 8 | Value(truncatingIfNeeded: bytes[offset + index]) }
        return value
    }

    static func bytes(hex: String) -> [UInt8]? {
        let characters = Array(hex.utf8)
        guard characters.count % 2 == 0 else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity(characters.count / 2)
        func nibble(_ character: UInt8) -> UInt8? {
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return character - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return character - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var index = 0
        while index < characters.count {
            guard let high = nibble(characters[index]), let low = nibble(characters[index + 1]) else { return nil }
            result.append(high << 4 | low)
            index += 2
        }
        return result
    }
}
