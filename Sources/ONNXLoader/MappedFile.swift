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

    private init(base: UnsafeRawPointer?, size: Int) {
        self.base = base
        self.size = size
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
    static func map(_ path: String) throws(Failure) -> MappedFile {
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
        if size == 0 { return MappedFile(base: nil, size: 0) }
        // The parser reads every byte at once, so fault the whole file in with one call rather
        // than one page fault per 4 KiB page (about 90,000 for the image model).
        #if os(Linux)
        let flags = MAP_PRIVATE | MAP_POPULATE
        #else
        let flags = MAP_PRIVATE
        #endif
        let address = mmap(nil, size, PROT_READ, flags, descriptor, 0)
        guard let address, address != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw .system("mmap failed: " + Self.message(errno))
        }
        return MappedFile(base: UnsafeRawPointer(address), size: size)
    }

    private static func message(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }
}
