#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Binary arithmetic, comparisons and Where with numpy ("multidirectional") broadcasting.
//
// Every case goes through one `BroadcastPlan`: dims of output size 1 are dropped and adjacent dims
// in which each operand is either fully present or fully broadcast are merged. The last merged dim
// becomes a contiguous inner loop in which each operand steps by 1 or 0. This turns the common
// cases into straight SIMD-friendly loops without special-casing each one:
//   same shape              -> one inner loop of n elements, both steps 1
//   scalar on either side   -> one inner loop, the scalar's step 0
//   [.., N] + [N] (bias)    -> outer loop over rows, inner N with steps 1/1
//   [B,77,77] + [1,77,77]   -> outer B, inner 5929 with steps 1/1 (the causal mask)
//   [R, C] - [R, 1] (LN)    -> outer R, inner C with steps 1/0
// Everything else (e.g. [N,1] op [1,M]) uses the same plan with an odometer over the outer dims.
// Everything here stays in one file: generic kernels are only specialised within their file in
// non-whole-module (debug) builds.

/// Arithmetic on two tensors of the same element type (float32 or int64), with broadcasting.
public enum BinaryOperation: String, Sendable, CaseIterable {
    case add, sub, mul, div, pow, min, max
}

/// Comparisons producing a bool tensor, with broadcasting.
public enum ComparisonOperation: String, Sendable, CaseIterable {
    case equal, less, greater
}

/// The numpy broadcast of two shapes: right-aligned, each dim pair equal or one of them 1.
public func broadcastShapes(_ a: [Int], _ b: [Int]) throws(KernelError) -> [Int] {
    let rank = Swift.max(a.count, b.count)
    var result = [Int](repeating: 1, count: rank)
    for index in 0..<rank {
        let first = index < rank - a.count ? 1 : a[index - (rank - a.count)]
        let second = index < rank - b.count ? 1 : b[index - (rank - b.count)]
        if first == second || second == 1 {
            result[index] = first
        } else if first == 1 {
            result[index] = second
        } else {
            throw KernelError("shapes \(a) and \(b) cannot be broadcast together (dim \(index): \(first) vs \(second))")
        }
    }
    return result
}

/// Computes `a <operation> b` elementwise with broadcasting.
///
/// float32 follows IEEE (x/0 = ±inf, NaN propagates except through min/max, which return the
/// second operand when the comparison is false). int64 add/sub/mul wrap on overflow; div truncates
/// toward zero (-7/2 = -3), throws on a zero divisor, and Int64.min / -1 wraps to Int64.min; pow
/// throws on a negative exponent and wraps on overflow. `pow` also accepts a float32 base with an
/// int64 exponent (opset 12+). Pow with a single-element exponent has fast paths for 2, 0.5, 1, 3,
/// 0, -1 and -0.5.
public func binary(_ operation: BinaryOperation, _ a: Tensor, _ b: Tensor) throws(KernelError) -> Tensor {
    try kernelRequire(a, [.float32, .int64], "\(operation) input A")
    if operation == .pow, a.dataType == .float32, b.dataType == .int64 {
        return try binary(.pow, a, floatCopy(of: b))
    }
    guard a.dataType == b.dataType else {
        throw KernelError("\(operation) inputs must have the same element type, got \(a.dataType) and \(b.dataType)")
    }
    let shape = try broadcastShapes(a.shape, b.shape)
    if a.dataType == .float32 {
        switch operation {
        case .add: return try runBinary(FloatAdd.self, a, b, shape)
        case .sub: return try runBinary(FloatSubtract.self, a, b, shape)
        case .mul: return try runBinary(FloatMultiply.self, a, b, shape)
        case .div: return try runBinary(FloatDivide.self, a, b, shape)
        case .min: return try runBinary(Minimum<Float>.self, a, b, shape)
        case .max: return try runBinary(Maximum<Float>.self, a, b, shape)
        case .pow:
            if b.count == 1, shape == a.shape, let fast = try powerWithScalarExponent(a, b.floats[0]) { return fast }
            return try runBinary(FloatPower.self, a, b, shape)
        }
    }
    switch operation {
    case .add: return try runBinary(IntegerAdd.self, a, b, shape)
    case .sub: return try runBinary(IntegerSubtract.self, a, b, shape)
    case .mul: return try runBinary(IntegerMultiply.self, a, b, shape)
    case .min: return try runBinary(Minimum<Int64>.self, a, b, shape)
    case .max: return try runBinary(Maximum<Int64>.self, a, b, shape)
    case .div:
        if shape.allSatisfy({ $0 > 0 }), b.int64s.contains(0) {
            throw KernelError("int64 division by zero (divisor shape \(b.shape))")
        }
        return try runBinary(IntegerDivide.self, a, b, shape)
    case .pow:
        if shape.allSatisfy({ $0 > 0 }), b.int64s.contains(where: { $0 < 0 }) {
            throw KernelError("int64 pow with a negative exponent is not supported (exponent shape \(b.shape))")
        }
        return try runBinary(IntegerPower.self, a, b, shape)
    }
}

/// Compares `a` and `b` elementwise with broadcasting, giving a bool tensor. `equal` accepts
/// float32, int64 and bool; `less` and `greater` float32 and int64. NaN compares false.
public func compare(_ operation: ComparisonOperation, _ a: Tensor, _ b: Tensor) throws(KernelError) -> Tensor {
    let allowed: [DataType] = operation == .equal ? [.float32, .int64, .bool] : [.float32, .int64]
    try kernelRequire(a, allowed, "\(operation) input A")
    guard a.dataType == b.dataType else {
        throw KernelError("\(operation) inputs must have the same element type, got \(a.dataType) and \(b.dataType)")
    }
    let shape = try broadcastShapes(a.shape, b.shape)
    switch (operation, a.dataType) {
    case (.equal, .float32): return try runBinary(Equal<Float>.self, a, b, shape)
    case (.equal, .int64): return try runBinary(Equal<Int64>.self, a, b, shape)
    case (.equal, _): return try runBinary(Equal<Bool>.self, a, b, shape)
    case (.less, .float32): return try runBinary(Less<Float>.self, a, b, shape)
    case (.less, _): return try runBinary(Less<Int64>.self, a, b, shape)
    case (.greater, .float32): return try runBinary(Greater<Float>.self, a, b, shape)
    case (.greater, _): return try runBinary(Greater<Int64>.self, a, b, shape)
    }
}

/// ONNX `Where`: `condition ? x : y` elementwise, all three broadcast together. `condition` is
/// bool; `x` and `y` share any element type (values are moved as raw bits).
public func select(_ condition: Tensor, _ x: Tensor, _ y: Tensor) throws(KernelError) -> Tensor {
    try kernelRequire(condition, [.bool], "Where condition")
    guard x.dataType == y.dataType else {
        throw KernelError("Where inputs X and Y must have the same element type, got \(x.dataType) and \(y.dataType)")
    }
    let shape = try broadcastShapes(try broadcastShapes(condition.shape, x.shape), y.shape)
    let output = try kernelOutput(x.dataType, shape)
    guard output.count > 0 else { return output }
    let plan = BroadcastPlan(output: shape, operands: [condition.shape, x.shape, y.shape])
    switch x.dataType.byteSize {
    case 1: runSelect(UInt8.self, plan, condition, x, y, output)
    case 2: runSelect(UInt16.self, plan, condition, x, y, output)
    case 4: runSelect(UInt32.self, plan, condition, x, y, output)
    default: runSelect(UInt64.self, plan, condition, x, y, output)
    }
    return output
}

// MARK: - Broadcast plan

/// How to walk up to three operands broadcast to one output (see the comment at the top).
struct BroadcastPlan {
    /// Merged outer dims (everything but the inner loop), outermost first.
    var outerShape: [Int] = []
    /// Per operand, the element stride of each outer dim (0 where broadcast).
    var outerStrides: [[Int]] = []
    /// Number of outer iterations (product of `outerShape`).
    var outerCount = 1
    /// Length of the contiguous inner loop.
    var innerCount = 1
    /// Per operand, 1 if it advances along the inner loop, 0 if it repeats one element.
    var innerSteps: [Int] = []

    init(output: [Int], operands: [[Int]]) {
        let rank = output.count
        var dims: [Int] = []
        var broadcastFlags: [[Bool]] = []
        var strides: [[Int]] = []
        let paddedStrides = operands.map { shape -> [Int] in
            let padded = [Int](repeating: 1, count: rank - shape.count) + shape
            return Shape.strides(padded)
        }
        let paddedShapes = operands.map { [Int](repeating: 1, count: rank - $0.count) + $0 }
        for axis in 0..<rank where output[axis] != 1 {
            let flags = paddedShapes.map { $0[axis] == 1 }
            let axisStrides = operands.indices.map { flags[$0] ? 0 : paddedStrides[$0][axis] }
            if let last = broadcastFlags.last, last == flags {
                // Mergeable: every operand is either contiguous across both dims or broadcast in both.
                dims[dims.count - 1] *= output[axis]
                strides[strides.count - 1] = axisStrides
            } else {
                dims.append(output[axis])
                broadcastFlags.append(flags)
                strides.append(axisStrides)
            }
        }
        if let innerFlags = broadcastFlags.last {
            innerCount = dims[dims.count - 1]
            innerSteps = innerFlags.map { $0 ? 0 : 1 }
            outerShape = Array(dims.dropLast())
            outerStrides = operands.indices.map { operand in strides.dropLast().map { $0[operand] } }
        } else {
            innerSteps = operands.map { _ in 0 }
            outerStrides = operands.map { _ in [] }
        }
        outerCount = kernelProduct(outerShape[...])
    }

    /// Calls `body(outerIndex, offsets)` for each outer index in `range`, with each operand's
    /// element offset at the start of that inner loop. Offsets advance like an odometer.
    @inline(__always)
    func forEachOuter(_ range: Range<Int>, _ body: (Int, _ offsets: UnsafeMutableBufferPointer<Int>) -> Void) {
        let operandCount = innerSteps.count
        let rank = outerShape.count
        withUnsafeTemporaryAllocation(of: Int.self, capacity: rank + operandCount) { scratch in
            let counters = UnsafeMutableBufferPointer(rebasing: scratch[0..<rank])
            let offsets = UnsafeMutableBufferPointer(rebasing: scratch[rank..<(rank + operandCount)])
            var remainder = range.lowerBound
            for operand in 0..<operandCount { offsets[operand] = 0 }
            for axis in stride(from: rank - 1, through: 0, by: -1) {
                counters[axis] = remainder % outerShape[axis]
                remainder /= outerShape[axis]
                for operand in 0..<operandCount { offsets[operand] += counters[axis] * outerStrides[operand][axis] }
            }
            for outer in range {
                body(outer, offsets)
                var axis = rank - 1
                while axis >= 0 {
                    counters[axis] += 1
                    for operand in 0..<operandCount { offsets[operand] += outerStrides[operand][axis] }
                    if counters[axis] < outerShape[axis] { break }
                    for operand in 0..<operandCount { offsets[operand] -= outerStrides[operand][axis] * outerShape[axis] }
                    counters[axis] = 0
                    axis -= 1
                }
            }
        }
    }

    /// Splits the work into chunks of about `Threading.elementwiseChunk` output elements, over
    /// outer iterations or, when there is a single one, over the inner loop. `body` gets an outer
    /// range, an inner range and the output offset of the first element.
    @inline(__always)
    func parallelChunks(_ body: (_ outer: Range<Int>, _ inner: Range<Int>) -> Void) {
        if outerCount == 1 {
            Threading.parallelFor(0..<innerCount, minimumChunk: Threading.elementwiseChunk) { inner in
                body(0..<1, inner)
            }
        } else {
            let rowsPerChunk = Swift.max(1, Threading.elementwiseChunk / Swift.max(innerCount, 1))
            Threading.parallelFor(0..<outerCount, minimumChunk: rowsPerChunk) { outer in
                body(outer, 0..<innerCount)
            }
        }
    }
}

// MARK: - Binary kernels

/// One scalar function of two inputs; static so each kernel specialises into a plain loop.
protocol BinaryFunctor {
    associatedtype Input: TensorElement
    associatedtype Output: TensorElement
    static func apply(_ a: Input, _ b: Input) -> Output
}

enum FloatAdd: BinaryFunctor { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b } }
enum FloatSubtract: BinaryFunctor { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b } }
enum FloatMultiply: BinaryFunctor { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b } }
enum FloatDivide: BinaryFunctor { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b } }
enum FloatPower: BinaryFunctor { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { powf(a, b) } }
enum IntegerAdd: BinaryFunctor { @inline(__always) static func apply(_ a: Int64, _ b: Int64) -> Int64 { a &+ b } }
enum IntegerSubtract: BinaryFunctor { @inline(__always) static func apply(_ a: Int64, _ b: Int64) -> Int64 { a &- b } }
enum IntegerMultiply: BinaryFunctor { @inline(__always) static func apply(_ a: Int64, _ b: Int64) -> Int64 { a &* b } }
enum IntegerDivide: BinaryFunctor {
    /// Swift's `/` truncates toward zero like C; the caller has excluded zero divisors, and the
    /// reporting form wraps Int64.min / -1 instead of trapping.
    @inline(__always) static func apply(_ a: Int64, _ b: Int64) -> Int64 {
        b == 0 ? 0 : a.dividedReportingOverflow(by: b).partialValue
    }
}
enum IntegerPower: BinaryFunctor {
    /// Square-and-multiply with wrapping; negative exponents were rejected by the caller.
    @inline(__always) static func apply(_ a: Int64, _ b: Int64) -> Int64 {
        var result: Int64 = 1, base = a, exponent = b
        while exponent > 0 {
            if exponent & 1 == 1 { result = result &* base }
            base = base &* base
            exponent >>= 1
        }
        return result
    }
}
enum Minimum<Element: TensorElement & Comparable>: BinaryFunctor {
    @inline(__always) static func apply(_ a: Element, _ b: Element) -> Element { a < b ? a : b }
}
enum Maximum<Element: TensorElement & Comparable>: BinaryFunctor {
    @inline(__always) static func apply(_ a: Element, _ b: Element) -> Element { a > b ? a : b }
}
enum Equal<Element: TensorElement & Equatable>: BinaryFunctor {
    @inline(__always) static func apply(_ a: Element, _ b: Element) -> Bool { a == b }
}
enum Less<Element: TensorElement & Comparable>: BinaryFunctor {
    @inline(__always) static func apply(_ a: Element, _ b: Element) -> Bool { a < b }
}
enum Greater<Element: TensorElement & Comparable>: BinaryFunctor {
    @inline(__always) static func apply(_ a: Element, _ b: Element) -> Bool { a > b }
}

/// One inner loop; the four step combinations are separate loops so each one vectorises.
@inline(__always)
private func binaryInner<F: BinaryFunctor>(_: F.Type, _ a: UnsafePointer<F.Input>, _ aStep: Int,
                                           _ b: UnsafePointer<F.Input>, _ bStep: Int,
                                           _ output: UnsafeMutablePointer<F.Output>, _ count: Int) {
    switch (aStep, bStep) {
    case (1, 1):
        for index in 0..<count { output[index] = F.apply(a[index], b[index]) }
    case (1, _):
        let scalar = b[0]
        for index in 0..<count { output[index] = F.apply(a[index], scalar) }
    case (_, 1):
        let scalar = a[0]
        for index in 0..<count { output[index] = F.apply(scalar, b[index]) }
    default:
        let value = F.apply(a[0], b[0])
        for index in 0..<count { output[index] = value }
    }
}

private func runBinary<F: BinaryFunctor>(_ functor: F.Type, _ a: Tensor, _ b: Tensor,
                                         _ shape: [Int]) throws(KernelError) -> Tensor {
    let output = try kernelOutput(F.Output.dataType, shape)
    guard output.count > 0,
          let first = a.elements(F.Input.self).baseAddress,
          let second = b.elements(F.Input.self).baseAddress,
          let result = output.mutableElements(F.Output.self).baseAddress else { return output }
    let plan = BroadcastPlan(output: shape, operands: [a.shape, b.shape])
    let aStep = plan.innerSteps[0], bStep = plan.innerSteps[1]
    plan.parallelChunks { outer, inner in
        plan.forEachOuter(outer) { outerIndex, offsets in
            binaryInner(functor,
                        first + offsets[0] + inner.lowerBound * aStep, aStep,
                        second + offsets[1] + inner.lowerBound * bStep, bStep,
                        result + outerIndex * plan.innerCount + inner.lowerBound, inner.count)
        }
    }
    return output
}

/// Fast paths for `x ^ c` with a single exponent value; nil when `c` has no special form.
private func powerWithScalarExponent(_ a: Tensor, _ exponent: Float) throws(KernelError) -> Tensor? {
    let fast: Set<Float> = [2, 0.5, 1, 3, 0, -1, -0.5]
    guard fast.contains(exponent) else { return nil }
    let output = try kernelOutput(.float32, a.shape)
    guard let source = a.floats.baseAddress, let destination = output.mutableFloats.baseAddress else { return output }
    Threading.parallelFor(0..<a.count, minimumChunk: Threading.elementwiseChunk) { range in
        let x = source + range.lowerBound, y = destination + range.lowerBound
        switch exponent {
        case 2: for index in 0..<range.count { y[index] = x[index] * x[index] }
        case 0.5: for index in 0..<range.count { y[index] = x[index].squareRoot() }
        case 1: for index in 0..<range.count { y[index] = x[index] }
        case 3: for index in 0..<range.count { y[index] = x[index] * x[index] * x[index] }
        case 0: for index in 0..<range.count { y[index] = 1 }
        case -1: for index in 0..<range.count { y[index] = 1 / x[index] }
        default: for index in 0..<range.count { y[index] = 1 / x[index].squareRoot() }
        }
    }
    return output
}

/// An int64 tensor converted to float32 (for a float base raised to integer exponents).
private func floatCopy(of tensor: Tensor) throws(KernelError) -> Tensor {
    let output = try kernelOutput(.float32, tensor.shape)
    let source = tensor.int64s, destination = output.mutableFloats
    for index in 0..<tensor.count { destination[index] = Float(source[index]) }
    return output
}

// MARK: - Where

private func runSelect<Word: FixedWidthInteger>(_: Word.Type, _ plan: BroadcastPlan, _ condition: Tensor,
                                                _ x: Tensor, _ y: Tensor, _ output: Tensor) {
    let flags = condition.storage.pointer.assumingMemoryBound(to: Bool.self)
    let first = x.storage.pointer.assumingMemoryBound(to: Word.self)
    let second = y.storage.pointer.assumingMemoryBound(to: Word.self)
    let result = output.storage.pointer.assumingMemoryBound(to: Word.self)
    let cStep = plan.innerSteps[0], xStep = plan.innerSteps[1], yStep = plan.innerSteps[2]
    plan.parallelChunks { outer, inner in
        plan.forEachOuter(outer) { outerIndex, offsets in
            let c = flags + offsets[0], xs = first + offsets[1], ys = second + offsets[2]
            let destination = result + outerIndex * plan.innerCount
            for index in inner {
                destination[index] = c[index * cStep] ? xs[index * xStep] : ys[index * yStep]
            }
        }
    }
}

// MARK: - Reference

extension ReferenceKernels {
    /// Element-by-element broadcasting float binary op (pow via Double).
    public static func binary(_ operation: BinaryOperation, _ a: [Float], _ aShape: [Int],
                              _ b: [Float], _ bShape: [Int]) throws(KernelError) -> (values: [Float], shape: [Int]) {
        let shape = try broadcastShapes(aShape, bShape)
        let count = kernelProduct(shape[...])
        var values = [Float](repeating: 0, count: count)
        for index in 0..<count {
            let x = a[broadcastOffset(index, output: shape, operand: aShape)]
            let y = b[broadcastOffset(index, output: shape, operand: bShape)]
            switch operation {
            case .add: values[index] = x + y
            case .sub: values[index] = x - y
            case .mul: values[index] = x * y
            case .div: values[index] = x / y
            case .pow: values[index] = Float(LibM.pow(Double(x), Double(y)))
            case .min: values[index] = Swift.min(x, y)
            case .max: values[index] = Swift.max(x, y)
            }
        }
        return (values, shape)
    }

    /// Element-by-element int64 binary op; division truncates via Double (exact for |v| < 2^53).
    public static func binary(_ operation: BinaryOperation, _ a: [Int64], _ aShape: [Int],
                              _ b: [Int64], _ bShape: [Int]) throws(KernelError) -> (values: [Int64], shape: [Int]) {
        let shape = try broadcastShapes(aShape, bShape)
        let count = kernelProduct(shape[...])
        var values = [Int64](repeating: 0, count: count)
        for index in 0..<count {
            let x = a[broadcastOffset(index, output: shape, operand: aShape)]
            let y = b[broadcastOffset(index, output: shape, operand: bShape)]
            switch operation {
            case .add: values[index] = x &+ y
            case .sub: values[index] = x &- y
            case .mul: values[index] = x &* y
            case .div:
                guard y != 0 else { throw KernelError("division by zero") }
                values[index] = Int64((Double(x) / Double(y)).rounded(.towardZero))
            case .pow: values[index] = Int64(LibM.pow(Double(x), Double(y)))
            case .min: values[index] = Swift.min(x, y)
            case .max: values[index] = Swift.max(x, y)
            }
        }
        return (values, shape)
    }

    /// Element-by-element Where over raw float values.
    public static func select(_ condition: [Bool], _ conditionShape: [Int], _ x: [Float], _ xShape: [Int],
                              _ y: [Float], _ yShape: [Int]) throws(KernelError) -> (values: [Float], shape: [Int]) {
        let shape = try broadcastShapes(try broadcastShapes(conditionShape, xShape), yShape)
        let count = kernelProduct(shape[...])
        let values = (0..<count).map { index in
            condition[broadcastOffset(index, output: shape, operand: conditionShape)]
                ? x[broadcastOffset(index, output: shape, operand: xShape)]
                : y[broadcastOffset(index, output: shape, operand: yShape)]
        }
        return (values, shape)
    }
}

