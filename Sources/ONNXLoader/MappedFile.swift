#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory. Unmapped when the last owner lets go, so it can
/// serve as the `keeper` of `.borrowed` tensor storage that points into an external data file.
final class MappedFile: @unchecked Sendable {
    /// Nil for an empty file (mmap refuses length 0).
    let base: UnsafeRawPointer?
    let size: Int
    /// The path it was opened with (for messages and tests).
    let path: String
    /// The file's identity when it was mapped (`WeightCacheStamp`).
    let identity: FileIdentity

    private init(base: UnsafeRawPointer?, size: Int, path: String, identity: FileIdentity) {
        self.base = base
        self.size = size
        self.path = path
        self.identity = identity
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    /// Why opening failed, so callers can turn it into the error that fits their context.
    enum Failure: Error {
        case notFound
        case isDirectory
        case system(String)
    }

    /// Maps `path` read-only. MAP_PRIVATE so that a writer changing the file later cannot
    /// change tensors we already validated (pages not yet touched may still reflect edits, as
    /// with any mmap; this is a read-only engine over files the user chose).
    /// `populate` maps every page at once (MAP_POPULATE); otherwise pages are faulted in as read
    /// (or in batches with `populate(_:)`, or all at once with `populateAll()`). `hugePages` asks
    /// for transparent huge pages (MADV_HUGEPAGE) before anything is read: pages the file system
    /// then reads from disk come in 2 MB folios, which the mapping covers with one entry each
    /// (Linux maps large file mappings 2 MB-aligned). Pages already cached stay as they are.
    static func map(_ path: String, populate: Bool = true, hugePages: Bool = false) throws(Failure) -> MappedFile {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT { throw .notFound }
            throw .system(Self.message(code))
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .system(Self.message(errno)) }
        if (status.st_mode & S_IFMT) == S_IFDIR { throw .isDirectory }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw .system("not a regular file") }
        let size = Int(status.st_size)
        let identity = FileIdentity(status)
        if size == 0 { return MappedFile(base: nil, size: 0, path: path, identity: identity) }
        // The parser reads every byte at once, so fault the whole file in with one call rather
        // than one page fault per 4 KiB page (about 90,000 for the image model).
        #if os(Linux)
        let flags = MAP_PRIVATE | (populate ? MAP_POPULATE : 0)
        #else
        let flags = MAP_PRIVATE
        #endif
        let address = mmap(nil, size, PROT_READ, flags, descriptor, 0)
        guard let address, address != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw .system("mmap failed: " + Self.message(errno))
        }
        #if os(Linux)
        // MADV_HUGEPAGE (14). Only a hint: kernels or file systems without large folios ignore it.
        if hugePages { _ = madvise(address, size, 14) }
        #endif
        return MappedFile(base: UnsafeRawPointer(address), size: size, path: path, identity: identity)
    }

    /// Maps every page of the file in one call (what `map(_:populate: true)` does).
    func populateAll() {
        guard let base else { return }
        Self.populate(UnsafeRawBufferPointer(start: base, count: size))
    }

    /// Maps the pages of `region` (inside this file's mapping) in one call, as MAP_POPULATE does for
    /// a whole file. MADV_POPULATE_READ (22) is Linux 5.14+; where it is missing the pages are simply
    /// faulted in when read.
    static func populate(_ region: UnsafeRawBufferPointer) {
        #if os(Linux)
        guard let start = region.baseAddress, region.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return }
        let first = Int(bitPattern: start) / page * page
        let end = Int(bitPattern: start) + region.count
        guard let address = UnsafeMutableRawPointer(bitPattern: first) else { return }
        _ = madvise(address, end - first, 22)
        #endif
    }

    private static func message(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }
}
