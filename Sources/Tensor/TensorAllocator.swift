/// Where the storage of new tensors comes from.
///
/// By default every tensor gets its own heap block. While a graph runs, the interpreter installs
/// an allocator (through the task-local `TensorAllocation.current`) that serves activations from
/// one planned arena instead: large blocks from `malloc` are `mmap`ed and returned to the kernel
/// on `free`, so a fresh block per node costs page faults on first touch, which measured as a third
/// of the image graph's run time here. Kernels need not know: `Tensor.uninitialized` asks the
/// current allocator and falls back to the heap when it declines.
public protocol TensorAllocator: AnyObject, Sendable {
    /// Storage of exactly `byteCount` bytes, or nil to let the caller use the heap.
    func allocate(byteCount: Int) -> TensorStorage?
}

/// Told when a storage it handed out is released (the last tensor using it went away).
public protocol StorageRecycler: AnyObject, Sendable {
    func storageReleased(token: Int, pointer: UnsafeMutableRawPointer)
}

/// Holds the allocator that `Tensor.uninitialized` consults for the current task.
public enum TensorAllocation {
    /// The allocator for tensors created by this task; nil means the heap. Work that kernels
    /// spread over Dispatch threads sees nil, which is intended: only the interpreter's own
    /// thread allocates activations.
    @TaskLocal public static var current: (any TensorAllocator)?
}
