#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `stat` says about a file without reading it: device, inode, size, and the modification
/// and status-change times to the nanosecond.
///
/// Any write to a file, or any rename onto its path, changes one of these: a write sets both
/// times to the current time, and the status-change time (ctime) cannot be set from user space
/// (`utimensat` sets the modification time but also stamps ctime with the current time). This is
/// the test git's index and make rely on to know a file is unchanged.
struct FileIdentity: Equatable, Sendable {
    let device: UInt64
    let inode: UInt64
    let size: UInt64
    let modifiedSeconds: UInt64
    let modifiedNanoseconds: UInt64
    let changedSeconds: UInt64
    let changedNanoseconds: UInt64

    init(_ status: stat) {
        device = UInt64(truncatingIfNeeded: status.st_dev)
        inode = UInt64(truncatingIfNeeded: status.st_ino)
        size = UInt64(truncatingIfNeeded: status.st_size)
        #if canImport(Darwin)
        modifiedSeconds = UInt64(truncatingIfNeeded: status.st_mtimespec.tv_sec)
        modifiedNanoseconds = UInt64(truncatingIfNeeded: status.st_mtimespec.tv_nsec)
        changedSeconds = UInt64(truncatingIfNeeded: status.st_ctimespec.tv_sec)
        changedNanoseconds = UInt64(truncatingIfNeeded: status.st_ctimespec.tv_nsec)
        #else
        modifiedSeconds = UInt64(truncatingIfNeeded: status.st_mtim.tv_sec)
        modifiedNanoseconds = UInt64(truncatingIfNeeded: status.st_mtim.tv_nsec)
        changedSeconds = UInt64(truncatingIfNeeded: status.st_ctim.tv_sec)
        changedNanoseconds = UInt64(truncatingIfNeeded: status.st_ctim.tv_nsec)
        #endif
    }

    init(fields: [UInt64]) {
        precondition(fields.count == Self.fieldCount)
        (device, inode, size) = (fields[0], fields[1], fields[2])
        (modifiedSeconds, modifiedNanoseconds, changedSeconds, changedNanoseconds) = (fields[3], fields[4], fields[5], fields[6])
    }

    /// The identity of the file at `path` now, or nil when it cannot be read.
    static func current(path: String) -> FileIdentity? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return FileIdentity(status)
    }

    static let fieldCount = 7
    var fields: [UInt64] {
        [device, inode, size, modifiedSeconds, modifiedNanoseconds, changedSeconds, changedNanoseconds]
    }

    /// Whether both times lie at least `seconds` before `now` (whole seconds since the epoch, so
    /// at least `seconds - 1` real seconds; a time in the future never settles). Only then
    /// does an unchanged identity prove unchanged bytes: the file system takes a file's times from
    /// a clock that advances in ticks of a few milliseconds, so a write in the same tick as the
    /// moment the bytes were read could leave every field as it was (git's "racily clean" case).
    /// A write after a time `seconds` in the past sets a time that differs from it.
    func isSettled(now: UInt64, seconds: UInt64) -> Bool {
        let latest = max(modifiedSeconds, changedSeconds)
        return latest <= now && now - latest >= seconds
    }
}

/// A small file beside a weight cache file that says "these cache bytes were compared with this
/// model file's bytes and were equal", so the next load can skip the comparison.
///
/// It holds the identities (`FileIdentity`) of both files at the time of a load that compared
/// every cached tensor with the model and found them equal. A later load trusts the cache without
/// comparing only when both files still have exactly those identities: a changed byte in either
/// file means a write, which changes its identity, and then the load compares as before (and
/// writes a new stamp when everything is equal again). A stamp is written only for files whose
/// times were settled (`FileIdentity.isSettled`) and unchanged from before the comparison to
/// after it. `ACTION_CLIP_WEIGHT_CACHE=verify` ignores stamps.
///
/// Layout (120 bytes, little-endian): "ACSTAMP1", then the 7 fields of the model's identity and
/// the 7 of the cache file's, each a UInt64.
enum WeightCacheStamp {
    static let magic: [UInt8] = Array("ACSTAMP1".utf8)
    static let size = 8 + 2 * FileIdentity.fieldCount * 8
    /// Seconds a file's times must lie in the past before a stamp may vouch for it.
    static let settleSeconds: UInt64 = 2

    static func path(cachePath: String) -> String { cachePath + suffix }
    /// What `path(cachePath:)` appends to the cache file's path.
    static let suffix = ".stamp"

    /// The identities a stamp file holds, or nil for a missing, short, long or foreign file.
    static func contents(path: String) -> (model: FileIdentity, cache: FileIdentity)? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        // One byte more than a stamp: a longer file is not a stamp.
        var bytes = [UInt8](repeating: 0, count: size + 1)
        let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, size + 1) }
        guard count == size, Array(bytes[0..<8]) == magic else { return nil }
        var fields: [UInt64] = []
        for offset in stride(from: 8, to: size, by: 8) {
            fields.append(bytes[offset..<(offset + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        }
        let half = FileIdentity.fieldCount
        return (FileIdentity(fields: Array(fields[0..<half])), FileIdentity(fields: Array(fields[half...])))
    }

    /// Writes a stamp for `model` and `cache` (temporary file and rename, so a reader sees a whole
    /// stamp or none). Failures are silent: without a stamp the next load compares.
    static func store(path: String, model: FileIdentity, cache: FileIdentity) {
        var bytes = magic
        for field in model.fields + cache.fields { withUnsafeBytes(of: field.littleEndian) { bytes += $0 } }
        let temporary = path + ".tmp.\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return }
        let written = bytes.withUnsafeBytes { AlignedWeightCache.writeAll(descriptor, $0, at: 0) }
        let closed = close(descriptor) == 0
        if !(written && closed) || rename(temporary, path) != 0 { unlink(temporary) }
    }

    /// Whether a load may use the cache file mapped as `cache` for the model mapped as `model`
    /// without comparing their bytes: the stamp at `path` names both identities exactly.
    static func vouches(path: String, model: FileIdentity, cache: FileIdentity) -> Bool {
        guard let stamp = contents(path: path) else { return false }
        return stamp.model == model && stamp.cache == cache
    }

    /// After a load that compared every cached tensor and found it equal: writes a stamp when both
    /// files are settled (`now` in seconds since the epoch) and still have the identities they had
    /// when they were mapped, before the comparison.
    static func record(path: String, model: MappedFile, cache: MappedFile, now: UInt64, settleSeconds: UInt64) {
        guard model.identity.isSettled(now: now, seconds: settleSeconds),
              cache.identity.isSettled(now: now, seconds: settleSeconds),
              FileIdentity.current(path: model.path) == model.identity,
              FileIdentity.current(path: cache.path) == cache.identity else { return }
        store(path: path, model: model.identity, cache: cache.identity)
    }

    /// Seconds since the epoch.
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(max(0, time.tv_sec))
    }
}
