import Testing
import Foundation
@testable import Tensor

@Suite struct UnaryTests {
    /// Evenly spaced points over [low, high], count not a multiple of 16 (exercises the tail).
    func grid(_ low: Float, _ high: Float, count: Int = 100_003) -> [Float] {
        (0..<count).map { low + (high - low) * Float($0) / Float(count - 1) }
    }

    func run(_ operation: UnaryOperation, _ values: [Float]) throws -> [Float] {
        try unary(operation, Tensor(values, shape: [values.count])).toArray(Float.self)
    }

    @Test func expRelativeErrorAgainstLibm() throws {
        let inputs = grid(-86.4, 88.7)
        let fast = try run(.exp, inputs)
        var worst: Double = 0
        for (x, y) in zip(inputs, fast) {
            let exact = Foundation.exp(Double(x))
            worst = max(worst, abs(Double(y) - exact) / exact)
        }
        #expect(worst < 3e-7, "max relative error \(worst)")
        let special = try run(.exp, [0, -.infinity, .infinity, .nan, 89, -100, 88.72])
        #expect(special[0] == 1 && special[1] == 0 && special[2] == .infinity && special[3].isNaN)
        #expect(special[4] == .infinity && special[5] == 0 && special[6].isFinite)
    }

    @Test func erfAbsoluteErrorBelowOneMillionth() throws {
        let inputs = grid(-6, 6)
        let fast = try run(.erf, inputs)
        let worst = zip(inputs, fast).map { abs(Double($1) - Foundation.erf(Double($0))) }.max() ?? 1
        #expect(worst <= 1e-6, "max abs error \(worst)")
        // Near zero the series keeps relative accuracy.
        let tiny = try run(.erf, [1e-6, -3e-5])
        #expect(abs(Double(tiny[0]) / Foundation.erf(1e-6) - 1) < 1e-6)
        #expect(abs(Double(tiny[1]) / Foundation.erf(-3e-5) - 1) < 1e-6)
    }

    @Test func sigmoidAndTanhAreStable() throws {
        let inputs = grid(-120, 120) + [0, 1e-5, -1e-5, 0.124, 0.126]
        let sigmoid = try run(.sigmoid, inputs), tanh = try run(.tanh, inputs)
        let sigmoidReference = ReferenceKernels.unary(.sigmoid, inputs)
        let tanhReference = ReferenceKernels.unary(.tanh, inputs)
        #expect(maxMixedError(sigmoid, sigmoidReference) < 3e-7)
        #expect(sigmoid.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 })
        #expect(maxMixedError(tanh, tanhReference) < 3e-7)
        // Relative accuracy near zero (where 1 - e^-2x would cancel).
        let small = try run(.tanh, [1e-5, 0.1])
        #expect(abs(Double(small[0]) / Foundation.tanh(1e-5) - 1) < 1e-6)
        #expect(abs(Double(small[1]) / Foundation.tanh(0.1) - 1) < 1e-6)
    }

    @Test func sqrtReluNeg() throws {
        var generator = SplitMix64(seed: 2)
        let values = generator.floats(1003, -5, 5)
        #expect(try run(.relu, values) == ReferenceKernels.unary(.relu, values))
        #expect(try run(.neg, values) == values.map { -$0 })
        let positive = values.map(abs)
        #expect(try run(.sqrt, positive) == ReferenceKernels.unary(.sqrt, positive))
        #expect(try run(.relu, [.nan])[0].isNaN)
        let integers = try unary(.neg, Tensor([Int64(3), -4, Int64.min], shape: [3]))
        #expect(try integers.toArray(Int64.self) == [-3, 4, Int64.min])
        #expect(throws: KernelError.self) { try unary(.exp, Tensor([Int64(1)], shape: [1])) }
    }

    @Test func quickGELUMatchesReference() throws {
        var generator = SplitMix64(seed: 4)
        let values = generator.floats(77 * 33 + 5, -10, 10)
        let fast = try quickGELU(Tensor(values, shape: [values.count])).toArray(Float.self)
        #expect(maxMixedError(fast, ReferenceKernels.quickGELU(values)) < 1e-6)
    }

    /// Rough speed of the SIMD exp (printed; the debug build compiles Tensor with -O).
    @Test func expThroughput() throws {
        let values = grid(-10, 10, count: 1 << 20)
        let tensor = try Tensor(values, shape: [values.count])
        _ = try unary(.exp, tensor)
        let clock = ContinuousClock()
        var result = tensor
        let elapsed = try clock.measure { for _ in 0..<5 { result = try unary(.exp, tensor) } }
        let seconds = Double(elapsed.components.attoseconds) * 1e-18 + Double(elapsed.components.seconds)
        print("SIMD exp: \(String(format: "%.2f", seconds / 5 / Double(values.count) * 1e9)) ns/element over 1M floats")
        #expect(result.count == values.count)
    }
}
