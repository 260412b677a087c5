import Testing
@testable import Tensor

@Suite struct TensorCoreTests {
    @Test func elementCountRejectsNegativeAndOverflow() {
        #expect(throws: TensorError.negativeDimension([2, -1])) { try Shape.elementCount([2, -1]) }
        #expect(throws: TensorError.self) { try Shape.elementCount([1 << 20, 1 << 20, 1 << 20]) }
        #expect((try? Shape.elementCount([])) == 1)
        #expect((try? Shape.elementCount([2, 0, 3])) == 0)
    }

    @Test func reshapeSharesStorageAndChecksCount() throws {
        let tensor = try Tensor([Float](repeating: 1, count: 6), shape: [2, 3])
        let reshaped = try tensor.reshaped([3, 2])
        #expect(reshaped.storage === tensor.storage)
        #expect(throws: TensorError.self) { try tensor.reshaped([4]) }
    }

    @Test func stridesAreRowMajor() {
        #expect(Shape.strides([2, 3, 4]) == [12, 4, 1])
        #expect(Shape.strides([]) == [])
    }
}
