import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Finds, downloads and verifies the model files in a directory.
///
/// Files are fetched only when missing: into a temporary file in the same directory, hashed
/// while they stream in, checked (HTTP status, length, not an HTML page, SHA-256 when the
/// manifest pins one), and only then renamed into place, so a final name never holds a partial
/// or wrong file. `manifest.json` in the directory records each file's SHA-256 the first time it
/// is seen (trust on first use: the ailia files have no published hashes) and pins it afterwards.
/// Re-hashing hundreds of MB on every run would dominate start-up, so a file is re-hashed only
/// when its size or modification time differs from the last verification.
public final class ModelStore: @unchecked Sendable {
    /// Why a model file could not be found, downloaded or verified; one line naming the file.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// What the manifest pins for one file: its SHA-256, size, source URL and last verification time.
    public struct ManifestEntry: Codable, Sendable, Equatable {
        public var sha256: String
        public var size: Int64
        public var url: String?
        /// Modification time (seconds since 1970) at the last successful verification.
        public var verifiedModificationTime: Double?
    }

    public let directory: String
    public let baseURL: String
    public let offline: Bool
    /// Checksums known in advance (e.g. the sample GIF's), which take precedence over the manifest.
    public let pinned: [String: String]
    /// Called with (bytes so far, expected total if known) while downloading.
    public let progress: (@Sendable (String, Int64, Int64?) -> Void)?

    public static let ailiaBaseURL = "https://storage.googleapis.com/ailia-models/action_clip/"
    public static let manifestName = "manifest.json"

    /// A store in `directory`; `offline` forbids downloads, `pinned` adds checksums known in advance.
    public init(directory: String, baseURL: String = ModelStore.ailiaBaseURL, offline: Bool = false,
                progress: (@Sendable (String, Int64, Int64?) -> Void)? = nil, pinned: [String: String] = [:]) {
        self.pinned = pinned
        self.directory = directory
        self.baseURL = baseURL.hasSuffix("/") ? baseURL : baseURL + "/"
        self.offline = offline
        self.progress = progress
    }

    var manifestPath: String { (directory as NSString).appendingPathComponent(Self.manifestName) }

    /// Where `fileName` lives in the store (whether or not it exists yet).
    public func path(of fileName: String) -> String { (directory as NSString).appendingPathComponent(fileName) }

    /// Whether the file is present (not whether it verifies).
    public func contains(_ fileName: String) -> Bool { FileManager.default.fileExists(atPath: path(of: fileName)) }

    /// Returns the path of a verified copy of `fileName`, downloading it if missing.
    @discardableResult
    public func resolve(_ fileName: String) throws(Failure) -> String {
        let destination = path(of: fileName)
        if FileManager.default.fileExists(atPath: destination) {
            try verify(fileName)
            return destination
        }
        let url = baseURL + fileName
        guard !offline else {
            throw Failure(description: "\(destination) is missing and --offline forbids downloading it from \(url)")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw Failure(description: "cannot create model directory \(directory): \((error as NSError).localizedDescription)")
        }
        try download(fileName, from: url, to: destination)
        return destination
    }

    // MARK: Manifest

    /// Reads the manifest; a missing file is an empty manifest, a corrupt one an error (it pins hashes,
    /// so silently ignoring it would drop the protection it gives).
    public func readManifest() throws(Failure) -> [String: ManifestEntry] {
        guard let data = FileManager.default.contents(atPath: manifestPath) else { return [:] }
        do {
            return try JSONDecoder().decode([String: [String: ManifestEntry]].self, from: data)["files"] ?? [:]
        } catch {
            throw Failure(description: "\(manifestPath) is not a valid model manifest (\(error)); fix or delete it")
        }
    }

    /// Updates one entry under an exclusive lock, so two processes never lose each other's entries.
    func updateManifest(_ fileName: String, _ entry: ManifestEntry) throws(Failure) {
        let lockPath = manifestPath + ".lock"
        let descriptor = open(lockPath, O_CREAT | O_RDWR, 0o644)
        guard descriptor >= 0 else { throw Failure(description: "cannot lock \(lockPath)") }
        defer { close(descriptor) }
        flock(descriptor, LOCK_EX)
        defer { flock(descriptor, LOCK_UN) }
        var files = try readManifest()
        files[fileName] = entry
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            let data = try encoder.encode(["files": files])
            try data.write(to: URL(fileURLWithPath: manifestPath), options: .atomic)
        } catch {
            throw Failure(description: "cannot write \(manifestPath): \((error as NSError).localizedDescription)")
        }
    }

    // MARK: Verification

    /// Checks a present file against the manifest, recording it if the manifest does not know it.
    public func verify(_ fileName: String) throws(Failure) {
        let filePath = path(of: fileName)
        let attributes: [FileAttributeKey: Any]
        do { attributes = try FileManager.default.attributesOfItem(atPath: filePath) } catch {
            throw Failure(description: "cannot read \(filePath): \((error as NSError).localizedDescription)")
        }
        let size = (attributes[.size] as? NSNumber)?.int64Value ?? -1
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970
        let manifest = try readManifest()
        let expected = pinned[fileName] ?? manifest[fileName]?.sha256
        if let entry = manifest[fileName], entry.size == size, let modified,
           entry.verifiedModificationTime == modified, entry.sha256 == expected {
            return
        }
        let digest: String
        do { digest = try SHA256.hex(ofFile: filePath) } catch {
            throw Failure(description: "cannot read \(filePath): \(error)")
        }
        if let expected, expected != digest {
            throw Failure(description: "\(filePath) does not match its pinned checksum (sha256 \(digest), expected \(expected)); delete it to download it again")
        }
        try updateManifest(fileName, ManifestEntry(sha256: digest, size: size, url: manifest[fileName]?.url,
                                                   verifiedModificationTime: modified))
    }

    /// The recorded SHA-256 of a verified file.
    public func checksum(of fileName: String) throws(Failure) -> String {
        try verify(fileName)
        guard let entry = try readManifest()[fileName] else {
            throw Failure(description: "no manifest entry for \(fileName) after verification")
        }
        return entry.sha256
    }

    // MARK: Download

    func download(_ fileName: String, from url: String, to destination: String) throws(Failure) {
        guard let remote = URL(string: url) else { throw Failure(description: "invalid URL \(url)") }
        let temporary = (directory as NSString).appendingPathComponent(".\(fileName).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).partial")
        let fetch = StreamingFetch(url: remote, destination: temporary, name: fileName, progress: progress)
        let outcome = fetch.run()
        var keepTemporary = false
        defer { if !keepTemporary { try? FileManager.default.removeItem(atPath: temporary) } }
        switch outcome {
        case .failure(let message):
            throw Failure(description: "download of \(url) failed: \(message)")
        case .success(let digest, let size):
            let manifestChecksum = try readManifest()[fileName]?.sha256
            if let expected = pinned[fileName] ?? manifestChecksum, expected != digest {
                throw Failure(description: "download of \(url) has sha256 \(digest), but \(expected) is pinned; nothing was saved")
            }
            do {
                // rename(2) is atomic within a directory: readers see the old state or the whole file.
                if rename(temporary, destination) != 0 {
                    throw Failure(description: "cannot move the download into \(destination): \(String(cString: strerror(errno)))")
                }
                keepTemporary = true
            }
            let modified = ((try? FileManager.default.attributesOfItem(atPath: destination))?[.modificationDate] as? Date)?.timeIntervalSince1970
            try updateManifest(fileName, ManifestEntry(sha256: digest, size: size, url: url, verifiedModificationTime: modified))
        }
    }
}

/// One HTTP GET streamed to a file while hashing, run synchronously (the CLI is synchronous).
final class StreamingFetch: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    enum Outcome {
        case success(sha256: String, size: Int64)
        case failure(String)
    }

    let url: URL
    let destination: String
    let name: String
    let progress: (@Sendable (String, Int64, Int64?) -> Void)?
    private var handle: FileHandle?
    private var hasher = SHA256()
    private var received: Int64 = 0
    private var expected: Int64?
    private var failure: String?
    private var firstBytesChecked = false
    private let done = DispatchSemaphore(value: 0)

    init(url: URL, destination: String, name: String, progress: (@Sendable (String, Int64, Int64?) -> Void)?) {
        self.url = url
        self.destination = destination
        self.name = name
        self.progress = progress
    }

    func run() -> Outcome {
        guard FileManager.default.createFile(atPath: destination, contents: nil),
              let handle = FileHandle(forWritingAtPath: destination) else {
            return .failure("cannot create \(destination)")
        }
        self.handle = handle
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 60
        let session = URLSession(configuration: configuration, delegate: self, delegateQueue: nil)
        session.dataTask(with: url).resume()
        done.wait()
        session.finishTasksAndInvalidate()
        try? handle.close()
        if let failure { return .failure(failure) }
        if let expected, expected != received {
            return .failure("connection closed after \(received) of \(expected) bytes")
        }
        guard received > 0 else { return .failure("the server sent an empty file") }
        return .success(sha256: hasher.finalizeHex(), size: received)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        if let http = response as? HTTPURLResponse {
            guard http.statusCode == 200 else {
                failure = "HTTP status \(http.statusCode)"
                completionHandler(.cancel)
                return
            }
            let type = (http.value(forHTTPHeaderField: "Content-Type") ?? "").lowercased()
            if type.hasPrefix("text/html") {
                failure = "the server returned an HTML page, not a model file"
                completionHandler(.cancel)
                return
            }
        }
        expected = response.expectedContentLength >= 0 ? response.expectedContentLength : nil
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard failure == nil else { return }
        if !firstBytesChecked {
            firstBytesChecked = true
            // A captive portal or error page served as 200 still starts with markup.
            if let first = data.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }), first == UInt8(ascii: "<") {
                failure = "the server returned markup (an HTML page?), not a model file"
                dataTask.cancel()
                return
            }
        }
        do { try handle?.write(contentsOf: data) } catch {
            failure = "cannot write \(destination): \((error as NSError).localizedDescription)"
            dataTask.cancel()
            return
        }
        hasher.update(data)
        received += Int64(data.count)
        progress?(name, received, expected)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if let error, failure == nil { failure = (error as NSError).localizedDescription }
        done.signal()
    }
}
