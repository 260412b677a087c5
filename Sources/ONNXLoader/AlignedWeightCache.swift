#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernels
import Tensor

/// Where the aligned weight cache lives and whether it is used.
public struct WeightCacheSettings: Sendable, Equatable {
    /// Directory of the cache files; nil turns the cache off.
    public var directory: String?
    /// Models with less raw_data than this are not cached (copying them costs little).
    public var minimumBytes: Int
    /// Whether a stamp (`WeightCacheStamp`) lets a load skip comparing the cache with the model.
    public var trustsStamps: Bool
    /// How long ago both files' times must lie before a stamp is written for them.
    var settleSeconds: UInt64 = WeightCacheStamp.settleSeconds

    public init(directory: String?, minimumBytes: Int = 32 << 20, trustsStamps: Bool = true) {
        self.directory = directory
        self.minimumBytes = minimumBytes
        self.trustsStamps = trustsStamps
    }

    public static let disabled = WeightCacheSettings(directory: nil)

    /// `$XDG_CACHE_HOME/action-clip/weights` (default `~/.cache/action-clip/weights`);
    /// `ACTION_CLIP_WEIGHT_CACHE=0` turns the cache off, `verify` compares the cache with the model
    /// on every load (stamps ignored), any other absolute path replaces the directory.
    public static func fromEnvironment() -> WeightCacheSettings {
        from { name in getenv(name).map { String(cString: $0) } }
    }

    /// The settings for an environment given as a lookup function.
    public static func from(environment variable: (String) -> String?) -> WeightCacheSettings {
        func value(_ name: String) -> String? { variable(name).flatMap { $0.isEmpty ? nil : $0 } }
        var trustsStamps = true
        if let setting = value("ACTION_CLIP_WEIGHT_CACHE") {
            if setting == "0" { return .disabled }
            if setting == "verify" { trustsStamps = false }
            if setting.hasPrefix("/") { return WeightCacheSettings(directory: setting) }
        }
        let base: String
        if let xdg = value("XDG_CACHE_HOME"), xdg.hasPrefix("/") {
            base = xdg
        } else if let home = value("HOME") {
            base = home + "/.cache"
        } else {
            return .disabled
        }
        return WeightCacheSettings(directory: base + "/action-clip/weights", trustsStamps: trustsStamps)
    }
}

/// A file holding a model's misaligned initializers again, each at a 64-byte aligned offset, so
/// that later loads map them in place instead of copying them. MatMul weights chosen for padded
/// rows (`MatrixRowPadding`) are stored with their rows at that pitch, aligned or not in the model,
/// and used in that layout (`PaddedRows`).
///
/// Why: about 90 % of a torch export's weight bytes sit at offsets that are not a multiple of 4
/// (each blob starts wherever its TensorProto header ends), so they cannot be used where the
/// model's mapping holds them and must be copied. A copy needs fresh memory, and on the VMs this
/// project is measured on a fresh page costs far more than the copy itself (the image model's
/// 323 MB took 0.05 to 1.1 s depending on how recently the VM's memory had been used). Pages of
/// this file are in the page cache after the first run, like the model's own.
///
/// Trust: the file is named by a hash of the model's structure, but its bytes are not taken on
/// trust. Each tensor is compared with the model's raw_data (`memcmp`, both sides page-cache
/// backed) before it is used; any difference, a short file or a foreign header makes the loader
/// copy from the model as it would without a cache, and write a new cache file. A load after one
/// that found every tensor equal skips the comparison when a stamp (`WeightCacheStamp`) shows
/// that neither file has been written since; the header, sizes and layouts are checked either way.
///
/// Layout (little-endian): "ACWEIGHT", UInt32 version, UInt32 entry count, UInt64 model key,
/// UInt64 model file size; then per entry UInt64 initializer index, source offset, length, cache
/// offset, row length in bytes, row pitch in bytes (both equal to the length when the tensor is
/// stored contiguously; pitch 0 for a matrix in packed strips, pitch 1 for a patch embedding's
/// weight stored as the packed strips of its transpose, `WeightPacking`); then the data (the gaps
/// between padded rows are zero).
final class AlignedWeightCache: @unchecked Sendable {
    static let magic: [UInt8] = Array("ACWEIGHT".utf8)
    /// 4: pitch 1 marks the packed strips of a transpose (working session 12).
    static let version: UInt32 = 4
    static let headerSize = 32
    static let entrySize = 48
    static let alignment = 64

    /// How a tensor's bytes are laid out where the loader puts them: contiguous (one "row" of all
    /// its bytes), `rows` rows of `rowBytes` starting `pitchBytes` apart, a float32 matrix of
    /// `rows` rows of `rowBytes` in packed strips (`PackedStrips`; same span as contiguous), or the
    /// packed strips of the transpose of such a matrix (`PackedStrips.transposed`; same span).
    struct Placement: Equatable {
        let rows: Int
        let rowBytes: Int
        let pitchBytes: Int
        let strips: Strips

        /// Whether the rows are stored as packed strips, and of which matrix.
        enum Strips: Equatable {
            /// Rows (contiguous or padded).
            case none
            /// The `[rows, rowBytes / 4]` float32 matrix in strips.
            case matrix
            /// The strips of its transpose.
            case transpose
        }

        var isPacked: Bool { strips == .matrix }
        var isPackedTransposed: Bool { strips == .transpose }

        /// The pitch field of a cache entry for `isPackedTransposed`. A real pitch is never below
        /// its row length, and such a matrix's rows are at least 8 bytes (2 floats), so 0 and 1
        /// cannot be real pitches of these entries.
        static let transposedPitchMarker = 1

        var isPadded: Bool { pitchBytes != rowBytes }
        /// Stored in a layout other than the model's row-major bytes.
        var isRelaid: Bool { isPadded || strips != .none }
        /// Bytes from the first row's start to the last row's end.
        var span: Int { rows == 0 ? 0 : (rows - 1) * pitchBytes + rowBytes }
        /// The pitch field of a cache entry: 0 marks packed strips, 1 those of the transpose.
        var storedPitch: Int {
            switch strips {
            case .none: return pitchBytes
            case .matrix: return 0
            case .transpose: return Self.transposedPitchMarker
            }
        }

        /// A 2-D float32 layout is packed when `packed` is set and it fits (`WeightPacking`); a
        /// float32 layout [M, ...] is stored as the packed strips of its [M, K] transpose when
        /// `packedTransposed` is set (the caller checked `WeightPacking.fitsTransposed`); else a
        /// 2-D layout with `rowPitch` (elements) longer than its rows is padded; anything else is contiguous.
        init(layout: TensorLayout, rowPitch: Int?, packed: Bool = false, packedTransposed: Bool = false) {
            if packed, WeightPacking.fits(dataType: layout.dataType, shape: layout.shape) {
                rows = layout.shape[0]
                rowBytes = layout.shape[1] * layout.dataType.byteSize
                pitchBytes = rowBytes
                strips = .matrix
            } else if packedTransposed, layout.dataType == .float32, layout.shape.count >= 2, layout.shape[0] > 0,
                      PackedStrips.fits(rows: layout.count / layout.shape[0], columns: layout.shape[0]) {
                rows = layout.shape[0]
                rowBytes = layout.byteCount / layout.shape[0]
                pitchBytes = rowBytes
                strips = .transpose
            } else if let rowPitch, layout.shape.count == 2, rowPitch > layout.shape[1], layout.shape[0] > 0 {
                rows = layout.shape[0]
                rowBytes = layout.shape[1] * layout.dataType.byteSize
                pitchBytes = rowPitch * layout.dataType.byteSize
                strips = .none
            } else {
                rows = 1
                rowBytes = layout.byteCount
                pitchBytes = layout.byteCount
                strips = .none
            }
        }

        /// A placement read from a cache file, checked: nil unless the rows tile `length` exactly
        /// and the span fits in `available` bytes. `pitchBytes` 0 means packed strips, whose rows
        /// must be whole strips of float32; 1 (with longer rows) the packed strips of the
        /// transpose, whose row count must be whole strips and whose rows whole floats.
        init?(length: Int, rowBytes: Int, pitchBytes: Int, available: Int) {
            guard length > 0, rowBytes > 0, length % rowBytes == 0 else { return nil }
            rows = length / rowBytes
            self.rowBytes = rowBytes
            if pitchBytes == 0 {
                guard rowBytes % (PackedStrips.stripColumns * MemoryLayout<Float>.size) == 0, length <= available else { return nil }
                self.pitchBytes = rowBytes
                strips = .matrix
                return
            }
            if pitchBytes == Self.transposedPitchMarker, rowBytes > pitchBytes {
                guard rowBytes % MemoryLayout<Float>.size == 0, rows % PackedStrips.stripColumns == 0,
                      length <= available else { return nil }
                self.pitchBytes = rowBytes
                strips = .transpose
                return
            }
            guard pitchBytes >= rowBytes else { return nil }
            self.pitchBytes = pitchBytes
            strips = .none
            let (gaps, overflow) = (rows - 1).multipliedReportingOverflow(by: pitchBytes)
            guard !overflow, gaps <= available, rowBytes <= available - gaps else { return nil }
        }

        /// Floats per row of a packed matrix, or of the matrix whose transpose is packed.
        var columns: Int { rowBytes / MemoryLayout<Float>.size }

        /// Copies the contiguous bytes at `source` into this layout at `destination` (`span` bytes;
        /// the gaps are left as they are).
        func copyRows(from source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer) {
            // `source` is often unaligned (the model's raw_data); the C side reads it with memcpy.
            let floats = destination.assumingMemoryBound(to: Float.self)
            switch strips {
            case .matrix: ck_pack_strips(rows, columns, source, columns, floats)
            case .transpose: ck_pack_strips_transposed(columns, rows, source, floats)
            case .none:
                PaddedRows.copyRows(rows, rowBytes: rowBytes, from: source, pitch: rowBytes, to: destination, pitch: pitchBytes)
            }
        }

        /// Whether the rows at `stored` (this layout) equal the contiguous bytes at `source`.
        func rowsEqual(_ stored: UnsafeRawPointer, _ source: UnsafeRawPointer) -> Bool {
            switch strips {
            case .matrix: return ck_packed_equal(rows, columns, source, stored) != 0
            case .transpose: return ck_packed_equal_transposed(columns, rows, source, stored) != 0
            case .none: return (0..<rows).allSatisfy { memcmp(stored + $0 * pitchBytes, source + $0 * rowBytes, rowBytes) == 0 }
            }
        }
    }

    struct Entry: Equatable {
        let initializer: Int
        let source: Range<Int>
        let cacheOffset: Int
        let placement: Placement
    }

    let mapping: MappedFile
    /// Cache ranges by initializer index.
    private let slots: [Int: Entry]
    /// A stamp vouched for this file and the model: tensors are used without comparing them.
    let trusted: Bool
    /// Entries compared with the model and found equal (the loader decodes on one thread).
    private(set) var verifiedCount = 0
    /// Every entry of the file was compared and found equal.
    var allVerified: Bool { verifiedCount == slots.count }

    private init(mapping: MappedFile, slots: [Int: Entry], trusted: Bool) {
        self.mapping = mapping
        self.slots = slots
        self.trusted = trusted
    }

    /// A name for the model's cache file: FNV-1a over the model without its raw_data, the raw_data
    /// ranges, the file size and whether MatMul weights are padded (so each setting has its own
    /// file). Collisions are harmless (the bytes and layouts are compared before use).
    static func key(skeleton: [UInt8], ranges: [Range<Int>?], fileSize: Int, paddedRows: Bool = false,
                    packedStrips: Bool = false) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        func mix(_ value: Int) { withUnsafeBytes(of: UInt64(truncatingIfNeeded: value).littleEndian) { $0.forEach(mix) } }
        skeleton.forEach(mix)
        for range in ranges {
            mix(range?.lowerBound ?? -1)
            mix(range?.count ?? -1)
        }
        mix(fileSize)
        mix(paddedRows ? 1 : 0)
        mix(packedStrips ? 1 : 0)
        return hash
    }

    static func path(directory: String, key: UInt64) -> String {
        let hex = String(key, radix: 16)
        return directory + "/" + String(repeating: "0", count: 16 - hex.count) + hex + ".weights"
    }

    /// The cache file for this model, or nil when it is missing or does not describe these ranges.
    /// Every size read from the file is checked against the file's length and the model's ranges.
    /// With `model` (the model file's mapping) it is `trusted` when its stamp names both files.
    static func load(path: String, key: UInt64, ranges: [Range<Int>?], modelSize: Int,
                     model: MappedFile? = nil) -> AlignedWeightCache? {
        // Not populated at once: each tensor's pages are mapped just before they are compared, while
        // the model's copy of them is released, so the two are never resident together.
        guard let mapping = try? MappedFile.map(path, populate: false, hugePages: true), let base = mapping.base,
              mapping.size >= headerSize else { return nil }
        let bytes = UnsafeRawBufferPointer(start: base, count: mapping.size)
        func word64(_ offset: Int) -> Int? {
            guard offset >= 0, offset <= bytes.count - 8 else { return nil }
            let value = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            return value <= UInt64(Int.max) ? Int(value) : nil
        }
        guard Array(bytes[0..<8]) == magic,
              UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) == version,
              UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)) == key,
              word64(24) == modelSize else { return nil }
        let count = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
        guard count <= ranges.count, headerSize + count * entrySize <= bytes.count else { return nil }
        var slots: [Int: Entry] = [:]
        for number in 0..<count {
            let at = headerSize + number * entrySize
            guard let index = word64(at), let offset = word64(at + 8), let length = word64(at + 16),
                  let cacheOffset = word64(at + 24), let rowBytes = word64(at + 32), let pitchBytes = word64(at + 40),
                  index < ranges.count, let expected = ranges[index],
                  expected.lowerBound == offset, expected.count == length,
                  cacheOffset % alignment == 0, cacheOffset <= bytes.count,
                  let placement = Placement(length: length, rowBytes: rowBytes, pitchBytes: pitchBytes,
                                            available: bytes.count - cacheOffset),
                  slots[index] == nil else { return nil }
            slots[index] = Entry(initializer: index, source: expected, cacheOffset: cacheOffset, placement: placement)
        }
        let trusted = model.map {
            WeightCacheStamp.vouches(path: WeightCacheStamp.path(cachePath: path), model: $0.identity, cache: mapping.identity)
        } ?? false
        return AlignedWeightCache(mapping: mapping, slots: slots, trusted: trusted)
    }

    /// Initializer `index`'s bytes from the cache (`placement.span` of them) if the cache stores
    /// them in that layout and they equal `source` (the model's raw_data), row by row; when the
    /// cache is `trusted`, without comparing (`source` is then never read).
    func verifiedRegion(_ index: Int, placement: Placement, equalTo source: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard let entry = slots[index], let base = mapping.base, entry.source.count == source.count,
              entry.placement == placement, let sourceStart = source.baseAddress else { return nil }
        let region = UnsafeRawBufferPointer(start: base + entry.cacheOffset, count: placement.span)
        MappedFile.populate(region)
        guard let start = region.baseAddress else { return nil }
        if trusted { return region }
        guard placement.rowsEqual(start, sourceStart) else { return nil }
        verifiedCount += 1
        return region
    }

    /// Writes a cache file holding the raw_data from `model` (the model file's bytes) of the
    /// initializers in `placements`, each laid out as its placement says.
    /// Written to a temporary file and renamed, so readers never see half a file; any failure
    /// (no space, read-only directory) leaves no file behind and is otherwise silent: the cache
    /// only saves time.
    static func write(directory: String, key: UInt64, model: UnsafeRawBufferPointer, ranges: [Range<Int>?],
                      placements: [Int: Placement]) {
        let entries: [Entry] = {
            var offset = (headerSize + placements.count * entrySize + alignment - 1) / alignment * alignment
            return placements.keys.sorted().compactMap { index in
                guard index >= 0, index < ranges.count, let range = ranges[index], let placement = placements[index],
                      placement.rows * placement.rowBytes == range.count else { return nil }
                defer { offset = (offset + placement.span + alignment - 1) / alignment * alignment }
                return Entry(initializer: index, source: range, cacheOffset: offset, placement: placement)
            }
        }()
        guard !entries.isEmpty, makeDirectories(directory) else { return }
        let path = Self.path(directory: directory, key: key)
        let temporary = path + ".tmp.\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return }
        var header: [UInt8] = magic
        func append<Value: FixedWidthInteger>(_ value: Value) { withUnsafeBytes(of: value.littleEndian) { header += $0 } }
        append(version)
        append(UInt32(entries.count))
        append(key)
        append(UInt64(model.count))
        for entry in entries {
            append(UInt64(entry.initializer))
            append(UInt64(entry.source.lowerBound))
            append(UInt64(entry.source.count))
            append(UInt64(entry.cacheOffset))
            append(UInt64(entry.placement.rowBytes))
            append(UInt64(entry.placement.storedPitch))
        }
        var ok = header.withUnsafeBytes { writeAll(descriptor, $0, at: 0) }
        for entry in entries where ok {
            let source = UnsafeRawBufferPointer(rebasing: model[entry.source])
            guard entry.placement.isRelaid else {
                ok = writeAll(descriptor, source, at: entry.cacheOffset)
                continue
            }
            // Padded rows (gaps zeroed) or packed strips are assembled and written in one call.
            guard let sourceStart = source.baseAddress,
                  let scratch = UnsafeMutableRawBufferPointer.allocateZeroed(entry.placement.span) else { ok = false; break }
            defer { free(scratch.baseAddress) }
            if let destination = scratch.baseAddress { entry.placement.copyRows(from: sourceStart, to: destination) }
            ok = writeAll(descriptor, UnsafeRawBufferPointer(scratch), at: entry.cacheOffset)
        }
        // On disk before it is renamed into place, so a crash cannot leave a short file under the
        // final name. Then its pages leave the page cache: written page by page, they are 4 KB
        // folios, and every later process would map (and unmap) the file 4 KB at a time. Read back
        // through `load`'s mapping instead, they come in as large folios, which a mapping covers with
        // 2 MB entries (with `load`'s MADV_HUGEPAGE): measured on the image model's 309 MiB cache,
        // MADV_POPULATE_READ 27 -> 0.5 ms and munmap 2.9 -> 0.1 ms; the warm default job's model
        // loading 85 -> 53 ms. The next load pays one read of the file from disk.
        ok = ok && fdatasync(descriptor) == 0
        if ok { _ = posix_fadvise(descriptor, 0, 0, Int32(POSIX_FADV_DONTNEED)) }
        let closed = close(descriptor) == 0
        if !(ok && closed) || rename(temporary, path) != 0 {
            unlink(temporary)
            return
        }
        removeOutdatedFiles(in: directory, except: path)
    }

    /// Deletes the cache files in `directory` that an earlier version of this format wrote: no
    /// build that writes this version reads them, so after an upgrade they would only hold disk
    /// space (about as much as the models' weights). Only files named like cache files that start
    /// with this format's magic and an older version number are touched.
    /// `except` (the file just written) is not even opened, so its pages stay out of the page cache.
    /// A stamp (`WeightCacheStamp`) whose cache file is gone, removed here or earlier, goes too: it
    /// names a file that no longer exists, so it could never vouch again.
    static func removeOutdatedFiles(in directory: String, except keptPath: String? = nil) {
        guard let handle = opendir(directory) else { return }
        var stamps: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasSuffix(".weights" + WeightCacheStamp.suffix), !name.hasPrefix(".") { stamps.append(name) }
            guard name.hasSuffix(".weights"), !name.hasPrefix(".") else { continue }
            let path = directory + "/" + name
            guard path != keptPath else { continue }
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { continue }
            var header = [UInt8](repeating: 0, count: 12)
            let count = header.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, 12) }
            close(descriptor)
            guard count == 12, Array(header[0..<8]) == magic else { continue }
            let fileVersion = header[8..<12].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            if fileVersion < version { unlink(path) }
        }
        closedir(handle)
        for stamp in stamps {
            let cachePath = directory + "/" + stamp.dropLast(WeightCacheStamp.suffix.count)
            if access(cachePath, F_OK) != 0 && errno == ENOENT { unlink(directory + "/" + stamp) }
        }
    }

    /// `pwrite` of all of `bytes` at `offset`, across short writes and EINTR (also the stamp's writer).
    static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        var done = 0
        while done < bytes.count {
            guard let base = bytes.baseAddress else { return false }
            let written = pwrite(descriptor, base + done, bytes.count - done, off_t(offset + done))
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return false }
            done += written
        }
        return true
    }

    /// `mkdir -p`; true when the directory exists afterwards.
    private static func makeDirectories(_ path: String) -> Bool {
        guard !path.isEmpty else { return false }
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST { return false }
        }
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }
}

private extension UnsafeMutableRawBufferPointer {
    /// `count` zero bytes, or nil when `calloc` fails (then the cache file is not written).
    static func allocateZeroed(_ count: Int) -> UnsafeMutableRawBufferPointer? {
        guard let base = calloc(Swift.max(count, 1), 1) else { return nil }
        return UnsafeMutableRawBufferPointer(start: base, count: count)
    }
}
