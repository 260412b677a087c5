#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One anonymous mapping that holds every weight the loader has to copy (raw_data whose offset in
/// the file is not aligned for its element type: about 90 % of the bytes of a torch export, since
/// protobuf puts each blob wherever its message header ends).
///
/// Why not one `malloc` per tensor: on the VMs this was measured on, every fresh 4 KiB page costs a
/// page fault of about 3.5 µs, and copying the 323 MB of the image model's misaligned weights into
/// separate blocks took 85,000 faults, most of the load time. A single region marked for
/// transparent huge pages faults in 2 MiB at a time (about 160 faults for the same bytes).
/// Tensors carved from it are never freed one by one; the region goes when its last tensor does
/// (each tensor's storage keeps the arena alive), which matches weights' lifetime: the model's.
final class WeightArena: @unchecked Sendable {
    private let base: UnsafeMutableRawPointer
    private let mappedSize: Int
    private var used = 0

    private static let hugePage = 2 << 20
    private static let alignment = 64

    /// Reserves address space for `capacity` bytes of tensors (pages are only backed when written).
    /// Nil when `capacity` is zero or the mapping fails; the caller then copies into ordinary storage.
    init?(capacity: Int) {
        guard capacity > 0, capacity <= Int.max / 2 else { return nil }
        // Room for the 64-byte rounding of every tensor is added by the caller; the extra huge page
        // lets the start be moved to a 2 MiB boundary so whole huge pages can back the region.
        let size = capacity + Self.hugePage
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        guard let address = mmap(nil, size, PROT_READ | PROT_WRITE, flags, -1, 0),
              address != UnsafeMutableRawPointer(bitPattern: -1) else { return nil }
        self.base = address
        self.mappedSize = size
        #if os(Linux)
        let start = (Int(bitPattern: address) + Self.hugePage - 1) / Self.hugePage * Self.hugePage
        used = start - Int(bitPattern: address)
        _ = madvise(address, size, Int32(MADV_HUGEPAGE))
        #endif
    }

    deinit {
        munmap(base, mappedSize)
    }

    /// `byteCount` bytes, 64-byte aligned, or nil when the reservation is exhausted.
    func allocate(_ byteCount: Int) -> UnsafeMutableRawPointer? {
        let start = (used + Self.alignment - 1) / Self.alignment * Self.alignment
        guard byteCount >= 0, byteCount <= mappedSize - start else { return nil }
        used = start + byteCount
        return base + start
    }

    /// The reservation needed for tensors of these sizes, each rounded up to the alignment.
    static func capacity(for sizes: some Sequence<Int>) -> Int {
        sizes.reduce(0) { $0 + ($1 + alignment - 1) / alignment * alignment }
    }
}
