// SIMD16 transcendental functions shared by the unary, softmax, sigmoid and QuickGELU kernels.
//
// Written after the codegen findings in build-notes §5: every helper is `@inline(__always)`
// (a call per vector costs ~50%), clamping uses masks and `replace(with:where:)` (never
// `SIMD.clamped`, which compiles to a per-lane loop through the stack), and rounding uses the
// magic-number trick (adding 1.5 * 2^23 rounds to nearest even in the FPU; `.rounded()` and
// SIMD int conversions become per-lane calls on the baseline x86-64 target).

import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

typealias FloatVector = SIMD16<Float>
typealias IntVector = SIMD16<Int32>

enum VectorMath {
    /// Lanes per vector.
    static let width = 16

    /// Above this, expf overflows to +inf.
    static let expUpperLimit: Float = 88.72283
    /// Below this the result (< 3e-38, at the bottom of the normal range) is flushed to zero; the
    /// power-of-two scaling below only builds normal numbers.
    static let expLowerLimit: Float = -86.5

    /// e^x, max relative error ~1.5e-7 against glibc expf for x in [-86.5, 88.72]; +inf above,
    /// 0 below -86.5, NaN stays NaN. Cephes' range reduction: x = n ln2 + r, |r| <= ln2/2, with ln2
    /// split into a part exact in 9 bits (so n * high is exact) and a correction.
    @inline(__always)
    static func exp(_ input: FloatVector) -> FloatVector {
        var x = input
        x.replace(with: expUpperLimit, where: x .> expUpperLimit)
        x.replace(with: expLowerLimit, where: x .< expLowerLimit)
        let magic: Float = 12_582_912 // 1.5 * 2^23
        let shifted = x * 1.442_695_040_888_963_4 + magic
        let n = shifted - magic
        let r = x - n * 0.693_359_375 - n * -2.121_944_400_546_905_8e-4
        var p = FloatVector(repeating: 1.987_569_150_0e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        p = p * (r * r) + r + 1
        // The low mantissa bits of `shifted` hold n (two's complement offset by the magic number).
        // 2^(n-1) is built from n + 126 (n ranges over -125...128) and the factor 2 restores it,
        // so n = 128 (x just below the overflow limit) still gives a finite result.
        let integerN = unsafeBitCast(shifted, to: IntVector.self) &- 0x4B40_0000
        let scale = unsafeBitCast((integerN &+ 126) &<< 23, to: FloatVector.self)
        var result = p * scale * 2
        result.replace(with: .infinity, where: input .> expUpperLimit)
        result.replace(with: 0, where: input .< expLowerLimit)
        result.replace(with: input, where: input .!= input)
        return result
    }

    /// 1 / (1 + e^-x) computed from e^-|x| so that neither branch overflows: x >= 0 gives
    /// 1 / (1 + e), x < 0 gives e / (1 + e).
    @inline(__always)
    static func sigmoid(_ x: FloatVector) -> FloatVector {
        let magnitude = x.replacing(with: -x, where: x .< 0)
        let e = exp(-magnitude)
        let denominator = 1 + e
        var result = 1 / denominator
        result.replace(with: e / denominator, where: x .< 0)
        return result
    }

    /// tanh(x) = sign(x) (1 - e) / (1 + e) with e = e^-2|x|; near zero that quotient loses
    /// relative precision, so |x| < 0.125 uses the Taylor series (error < 2e-10 there).
    @inline(__always)
    static func tanh(_ x: FloatVector) -> FloatVector {
        let negative = x .< 0
        let magnitude = x.replacing(with: -x, where: negative)
        let e = exp(-2 * magnitude)
        var result = (1 - e) / (1 + e)
        let square = x * x
        var series = FloatVector(repeating: -17.0 / 315.0)
        series = series * square + 2.0 / 15.0
        series = series * square - 1.0 / 3.0
        series = series * square * magnitude + magnitude
        result.replace(with: series, where: magnitude .< 0.125)
        result.replace(with: -result, where: negative)
        result.replace(with: x, where: x .!= x)
        return result
    }

    /// erf(x), max absolute error ~2e-7. |x| < 0.5: Maclaurin series to x^13 (keeps relative
    /// accuracy near zero); otherwise Abramowitz & Stegun 7.1.26, 1 - poly(t) e^-x^2 with
    /// t = 1/(1 + p|x|), whose own error is 1.5e-7.
    @inline(__always)
    static func erf(_ x: FloatVector) -> FloatVector {
        let negative = x .< 0
        let magnitude = x.replacing(with: -x, where: negative)
        let t = 1 / (1 + 0.327_591_1 * magnitude)
        var poly = FloatVector(repeating: 1.061_405_429)
        poly = poly * t - 1.453_152_027
        poly = poly * t + 1.421_413_741
        poly = poly * t - 0.284_496_736
        poly = poly * t + 0.254_829_592
        poly = poly * t
        var result = 1 - poly * exp(-(magnitude * magnitude))
        result.replace(with: -result, where: negative)
        // 2/sqrt(pi) * (x - x^3/3 + x^5/10 - x^7/42 + x^9/216 - x^11/1320 + x^13/9360)
        let square = x * x
        var series = FloatVector(repeating: 1.0 / 9360.0)
        series = series * square - 1.0 / 1320.0
        series = series * square + 1.0 / 216.0
        series = series * square - 1.0 / 42.0
        series = series * square + 1.0 / 10.0
        series = series * square - 1.0 / 3.0
        series = (series * square + 1) * x * 1.128_379_167_095_512_6
        result.replace(with: series, where: magnitude .< 0.5)
        result.replace(with: x, where: x .!= x)
        return result
    }

    /// Applies a vector function to a buffer: full vectors, then the tail through a zero-padded vector.
    @inline(__always)
    static func map(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int,
                    _ function: (FloatVector) -> FloatVector) {
        var index = 0
        while index + width <= count {
            let vector = UnsafeRawPointer(input + index).loadUnaligned(as: FloatVector.self)
            UnsafeMutableRawPointer(output + index).storeBytes(of: function(vector), as: FloatVector.self)
            index += width
        }
        if index < count {
            var vector = FloatVector(repeating: 0)
            let remaining = count - index
            for lane in 0..<remaining { vector[lane] = input[index + lane] }
            let result = function(vector)
            for lane in 0..<remaining { output[index + lane] = result[lane] }
        }
    }

    // Buffer-level entry points. Kernels in other files call these once per row or chunk rather
    // than `map` with a closure: in non-whole-module (debug) builds nothing is inlined across
    // files, so the per-vector work must sit in this file to be inlined.

    /// output[i] = e^(input[i] - shift).
    static func exp(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int, shift: Float = 0) {
        map(input, output, count: count) { exp($0 - shift) }
    }

    /// output[i] = sigmoid(input[i]).
    static func sigmoid(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
        map(input, output, count: count) { sigmoid($0) }
    }

    /// output[i] = tanh(input[i]).
    static func tanh(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
        map(input, output, count: count) { tanh($0) }
    }

    /// output[i] = erf(input[i]).
    static func erf(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
        map(input, output, count: count) { erf($0) }
    }

    /// output[i] = x * sigmoid(1.702 x) (CLIP's QuickGELU): the AVX2+FMA C kernel when the CPU has it
    /// (`CPUFeatures.avx2`), else the portable SIMD loop below.
    static func quickGELU(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
        if CPUFeatures.avx2 {
            ck_quick_gelu_avx2(input, output, count)
        } else {
            portableQuickGELU(input, output, count: count)
        }
    }

    /// QuickGELU with Swift SIMD only (SSE2 code in the default build); the reference for the C kernel.
    static func portableQuickGELU(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
        map(input, output, count: count) { $0 * sigmoid($0 * 1.702) }
    }

    /// Softmax of one row (output may be input): the AVX2+FMA C kernel when the CPU has it
    /// (`CPUFeatures.avx2`), else the portable SIMD loop below.
    static func softmaxRow(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
        if CPUFeatures.avx2 {
            ck_softmax_row_avx2(input, output, count)
        } else {
            portableSoftmaxRow(input, output, count: count)
        }
    }

    /// Softmax with Swift SIMD only (SSE2 code in the default build), the reference for the C
    /// kernel: max, exp(x - max) with the sum accumulated in the same pass, scale.
    static func portableSoftmaxRow(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
        let shift = maximum(input, count: count)
        var total = FloatVector(repeating: 0)
        var index = 0
        while index + width <= count {
            let value = exp(UnsafeRawPointer(input + index).loadUnaligned(as: FloatVector.self) - shift)
            UnsafeMutableRawPointer(output + index).storeBytes(of: value, as: FloatVector.self)
            total += value
            index += width
        }
        var scalarTotal = total.sum()
        if index < count {
            // Padding lanes hold -inf so they contribute e^-inf = 0 to the sum.
            var vector = FloatVector(repeating: -.infinity)
            let remaining = count - index
            for lane in 0..<remaining { vector[lane] = input[index + lane] }
            let value = exp(vector - shift)
            for lane in 0..<remaining {
                output[index + lane] = value[lane]
                scalarTotal += value[lane]
            }
        }
        let scale = 1 / scalarTotal
        for position in 0..<count { output[position] *= scale }
    }

    /// Sum of `count` floats with two SIMD16 accumulators (a scalar loop would not vectorise:
    /// the compiler keeps the strict left-to-right order of float additions).
    @inline(__always)
    static func sum(_ input: UnsafePointer<Float>, count: Int) -> Float {
        var first = FloatVector(repeating: 0), second = FloatVector(repeating: 0)
        var index = 0
        while index + 2 * width <= count {
            first += UnsafeRawPointer(input + index).loadUnaligned(as: FloatVector.self)
            second += UnsafeRawPointer(input + index + width).loadUnaligned(as: FloatVector.self)
            index += 2 * width
        }
        if index + width <= count {
            first += UnsafeRawPointer(input + index).loadUnaligned(as: FloatVector.self)
            index += width
        }
        var total = (first + second).sum()
        while index < count {
            total += input[index]
            index += 1
        }
        return total
    }

    /// Sum of (x - center)^2 over `count` floats, two accumulators.
    @inline(__always)
    static func sumOfSquaredDeviations(_ input: UnsafePointer<Float>, count: Int, center: Float) -> Float {
        var first = FloatVector(repeating: 0), second = FloatVector(repeating: 0)
        var index = 0
        while index + 2 * width <= count {
            let a = UnsafeRawPointer(input + index).loadUnaligned(as: FloatVector.self) - center
            let b = UnsafeRawPointer(input + index + width).loadUnaligned(as: FloatVector.self) - center
            first += a * a
            second += b * b
            index += 2 * width
        }
        var total = (first + second).sum()
        while index < count {
            let deviation = input[index] - center
            total += deviation * deviation
            index += 1
        }
        return total
    }

    /// Largest of `count >= 1` floats; NaN lanes are skipped unless every value is NaN.
    @inline(__always)
    static func maximum(_ input: UnsafePointer<Float>, count: Int) -> Float {
        var first = FloatVector(repeating: -.infinity), second = FloatVector(repeating: -.infinity)
        var index = 0
        while index + 2 * width <= count {
            // Mask selects, not pointwiseMax: the latter is a per-lane loop on the baseline x86-64 target.
            let a = UnsafeRawPointer(input + index).loadUnaligned(as: FloatVector.self)
            let b = UnsafeRawPointer(input + index + width).loadUnaligned(as: FloatVector.self)
            first.replace(with: a, where: a .> first)
            second.replace(with: b, where: b .> second)
            index += 2 * width
        }
        first.replace(with: second, where: second .> first)
        var result = first.max()
        while index < count {
            if input[index] > result { result = input[index] }
            index += 1
        }
        return result
    }
}

/// Which instruction-set paths the C kernels may take. The default build targets baseline x86-64;
/// AVX2+FMA code lives in `Sources/CKernels` behind a run-time CPU check, so one binary runs
/// everywhere and uses the wider units where they exist.
public enum CPUFeatures {
    /// AVX2 and FMA are present and not switched off with `ACTION_CLIP_AVX2=0` (which forces the
    /// portable kernels, e.g. to compare them).
    public static let avx2: Bool = {
        if let value = getenv("ACTION_CLIP_AVX2"), String(cString: value) == "0" { return false }
        return ck_cpu_has_avx2_fma() != 0
    }()

    /// AVX-512F is present and not switched off with `ACTION_CLIP_AVX512=0`. Off, the loader does
    /// not pack weights by default (`WeightPacking`), and weights packed anyway
    /// (`ACTION_CLIP_PACK_WEIGHTS=1`) go to the packed GEMM's AVX2 kernel (`PackedGEMM.path`),
    /// or to its portable one when `avx2` is off too.
    public static let avx512: Bool = {
        if let value = getenv("ACTION_CLIP_AVX512"), String(cString: value) == "0" { return false }
        return ck_cpu_has_avx512f() != 0
    }()

    /// AVX-512F and AVX512-BF16 are present and `avx512` is not switched off: what the opt-in
    /// bfloat16 precision (`GEMMPrecision.bfloat16`) needs to be fast.
    public static let avx512BFloat16: Bool = avx512 && ck_cpu_has_avx512_bf16() != 0
}
