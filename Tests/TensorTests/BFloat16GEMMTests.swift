import Foundation
import Testing
import CKernels
@testable import Tensor

/// The opt-in bfloat16 product (Sources/CKernels/PackedGEMMBF16.c): the rounding, the strip
/// layout, the portable kernel against a Double product of the rounded operands, the vector
/// kernel against the portable one (where this CPU has AVX512-BF16), and the threaded wrapper.
/// The tests pass a path explicitly and never set the process-wide `PackedGEMM.precision`, which
/// tests running in parallel would see.
@Suite struct BFloat16GEMMTests {
    static let hasVectorKernel = ck_cpu_has_avx512_bf16() != 0
    static var paths: [PackedGEMM.Path] { (hasVectorKernel ? [.bfloat16AVX512] : []) + [.bfloat16Portable] }

    static func bits(_ value: Float) -> UInt32 { value.bitPattern }
    static func float(_ bits: UInt32) -> Float { Float(bitPattern: bits) }

    /// Round to nearest, ties to even; overflow to infinity; NaN stays NaN; denormals to zero.
    @Test func roundingToNearestEven() {
        let cases: [(UInt32, UInt16)] = [
            (0x3f80_0000, 0x3f80),  // 1
            (0x3f80_7fff, 0x3f80),  // below half an ulp: down
            (0x3f80_8000, 0x3f80),  // a tie, even below: down
            (0x3f81_8000, 0x3f82),  // a tie, odd below: up to even
            (0x3f80_8001, 0x3f81),  // above half: up
            (0xbf80_8001, 0xbf81),  // sign kept
            (0x7f7f_ffff, 0x7f80),  // the largest float rounds to infinity
            (0x7f80_0000, 0x7f80), (0xff80_0000, 0xff80),
            (0x0000_0001, 0x0000), (0x807f_ffff, 0x8000),  // denormals to signed zero, as the instruction
            (0x0080_0000, 0x0080),  // the smallest normal stays
        ]
        for (input, expected) in cases {
            #expect(ck_bf16_from_float(Self.float(input)) == expected, "0x\(String(input, radix: 16))")
        }
        for nan: UInt32 in [0x7fc0_0000, 0x7f80_0001, 0xffbf_ffff] {
            #expect(ck_float_from_bf16(ck_bf16_from_float(Self.float(nan))).isNaN)
        }
        // Every finite bfloat16 value is exact in float32 and converts back to itself.
        for value in UInt16.min...UInt16.max where (value & 0x7f80) != 0x7f80 && (value & 0x7f80) != 0 {
            #expect(ck_bf16_from_float(ck_float_from_bf16(value)) == value)
        }
    }

    /// The AVX512-BF16 row conversion gives the portable one's bits: random bit patterns (NaN,
    /// denormals and all), every row length 1...40 for the vector loop's tail and an odd k's zero.
    @Test(.enabled(if: hasVectorKernel, "this CPU has no AVX512-BF16"))
    func vectorConversionMatchesPortable() {
        var generator = SplitMix64(seed: 77)
        for k in 1...40 {
            let rows = 3, lda = k + 5, pitch = (k + 1) / 2 * 2 + 2
            let x = (0..<(rows * lda)).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: generator.next())) }
            var fast = [UInt16](repeating: 0xffff, count: rows * pitch), plain = fast
            x.withUnsafeBufferPointer { a in
                fast.withUnsafeMutableBufferPointer { out in
                    if let a = a.baseAddress, let out = out.baseAddress { ck_bf16_convert_rows_avx512(rows, k, a, lda, out, pitch) }
                }
                plain.withUnsafeMutableBufferPointer { out in
                    if let a = a.baseAddress, let out = out.baseAddress { ck_bf16_convert_rows_portable(rows, k, a, lda, out, pitch) }
                }
            }
            #expect(fast == plain, "k \(k)")
            for row in 0..<rows {
                if k % 2 == 1 { #expect(plain[row * pitch + k] == 0, "k \(k): the pad after an odd k") }
                #expect(plain[row * pitch + pitch - 1] == 0xffff, "k \(k): written past the row")
            }
        }
        var matches = true
        for _ in 0..<4096 {
            let x = (0..<64).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: generator.next())) }
            var fast = [UInt16](repeating: 0, count: 64), plain = fast
            x.withUnsafeBufferPointer { a in
                fast.withUnsafeMutableBufferPointer { if let a = a.baseAddress, let o = $0.baseAddress { ck_bf16_convert_rows_avx512(1, 64, a, 64, o, 64) } }
                plain.withUnsafeMutableBufferPointer { if let a = a.baseAddress, let o = $0.baseAddress { ck_bf16_convert_rows_portable(1, 64, a, 64, o, 64) } }
            }
            matches = matches && fast == plain
        }
        #expect(matches)
    }

    /// Row-major [k, n] into bfloat16 strips, through the float32 strips as the loader's weights are.
    static func bfloat16Strips(_ weight: [Float], k: Int, n: Int) -> [UInt16] {
        let strips = PackedGEMMTests.pack(weight, k: k, n: n)
        var packed = [UInt16](repeating: 0xffff, count: ck_bf16_strips_count(k, n))
        strips.withUnsafeBufferPointer { s in
            packed.withUnsafeMutableBufferPointer { p in
                if let s = s.baseAddress, let p = p.baseAddress { ck_bf16_pack_strips_portable(k, s, p, 0, n / 32) }
            }
        }
        return packed
    }

    /// The AVX512-BF16 packing writes the portable packing's bits, strip range by strip range
    /// (random values, odd and even k); and `PackedStrips.bfloat16Strips` (threads, this CPU's
    /// packing) equals it too.
    @Test(arguments: [1, 2, 7, 64, 129])
    func packingPathsAgree(k: Int) throws {
        let n = 96
        var generator = SplitMix64(seed: UInt64(k))
        let weight = generator.floats(k * n, -3, 3)
        let plain = Self.bfloat16Strips(weight, k: k, n: n)
        let tensor = try Tensor(weight, shape: [k, n]).packedStripsCopy()
        let strips = try #require(tensor.floatPackedStrips())
        let made = Array(UnsafeBufferPointer(start: strips.bfloat16Strips(), count: plain.count))
        #expect(made == plain)
        guard Self.hasVectorKernel else { return }
        let float32Strips = PackedGEMMTests.pack(weight, k: k, n: n)
        var fast = [UInt16](repeating: 0xffff, count: plain.count)
        float32Strips.withUnsafeBufferPointer { s in
            fast.withUnsafeMutableBufferPointer { p in
                guard let s = s.baseAddress, let p = p.baseAddress else { return }
                ck_bf16_pack_strips_avx512(k, s, p, 1, 3)
                ck_bf16_pack_strips_avx512(k, s, p, 0, 1)
            }
        }
        #expect(fast == plain)
    }

    /// Each value sits where the header says, pairs of rows interleaved; an odd k's last pair has a zero row.
    @Test(arguments: [4, 5])
    func stripLayout(k: Int) {
        let n = 64
        // (2p + 1) * 2^j: distinct for every (p, j), and at most 4 significant bits, so exact in bfloat16.
        let weight = (0..<(k * n)).map { index in Float(2 * (index / n) + 1) * Float(sign: .plus, exponent: index % n, significand: 1) }
        let packed = Self.bfloat16Strips(weight, k: k, n: n)
        let pairs = (k + 1) / 2
        #expect(packed.count == pairs * 2 * n)
        for s in 0..<(n / 32) {
            for q in 0..<pairs {
                for j in 0..<32 {
                    for t in 0..<2 {
                        let value = ck_float_from_bf16(packed[((s * pairs + q) * 32 + j) * 2 + t])
                        let p = 2 * q + t
                        #expect(value == (p < k ? weight[p * n + s * 32 + j] : 0), "strip \(s) pair \(q) column \(j) row \(t)")
                    }
                }
            }
        }
    }

    /// The kernel on strips [strip0, strip1) of bfloat16 A (converted here, portable) and W.
    static func run(_ path: PackedGEMM.Path, rows: Int, k: Int, n: Int, x: [Float], packed: [UInt16],
                    strips: Range<Int>, accumulate: Bool, into output: inout [Float]) {
        let pitch = (k + 1) / 2 * 2
        var converted = [UInt16](repeating: 0, count: rows * pitch)
        x.withUnsafeBufferPointer { a in
            converted.withUnsafeMutableBufferPointer { out in
                if let a = a.baseAddress, let out = out.baseAddress { ck_bf16_convert_rows_portable(rows, k, a, k, out, pitch) }
            }
        }
        converted.withUnsafeBufferPointer { a in
            packed.withUnsafeBufferPointer { w in
                output.withUnsafeMutableBufferPointer { c in
                    guard let a = a.baseAddress, let w = w.baseAddress, let c = c.baseAddress else { return }
                    let column = c + strips.lowerBound * PackedStrips.stripColumns
                    switch path {
                    case .bfloat16AVX512:
                        ck_bf16_gemm_avx512(rows, k, a, pitch, w, column, n, strips.lowerBound, strips.upperBound, accumulate ? 1 : 0)
                    case .bfloat16Portable:
                        ck_bf16_gemm_portable(rows, k, a, pitch, w, column, n, strips.lowerBound, strips.upperBound, accumulate ? 1 : 0)
                    case .avx512, .avx2, .portable:
                        Issue.record("not a bfloat16 path: \(path)")
                    }
                }
            }
        }
    }

    static func rounded(_ values: [Float]) -> [Float] { values.map { ck_float_from_bf16(ck_bf16_from_float($0)) } }

    /// Every path equals the Double product of the bfloat16-rounded operands (so the only error
    /// is float32 summation), for every tail of 1...7 rows after the 8-row tiles, odd and even k,
    /// with and without accumulate; and it differs from the float32 product by no more than the
    /// rounding allows: |error| <= sum |x w| * 2^-7 (two roundings of at most 2^-8 relative each:
    /// 8 significant bits).
    @Test(arguments: [(1, 1, 32), (2, 7, 64), (3, 64, 32), (5, 31, 32), (7, 97, 32), (8, 512, 128), (9, 70, 64),
                      (11, 19, 160), (15, 33, 96), (17, 257, 32), (50, 300, 96), (10, 769, 64)])
    func kernelMatchesReference(rows: Int, k: Int, n: Int) {
        var generator = SplitMix64(seed: UInt64(rows * 7919 + k * 31 + n))
        let x = generator.floats(rows * k, -1, 1)
        let weight = generator.floats(k * n, -0.2, 0.2)
        let start = generator.floats(rows * n, -1, 1)
        let packed = Self.bfloat16Strips(weight, k: k, n: n)
        let exactOfRounded = PackedGEMMTests.reference(rows: rows, k: k, n: n, x: Self.rounded(x), weight: Self.rounded(weight), start: nil)
        let float32 = PackedGEMMTests.reference(rows: rows, k: k, n: n, x: x, weight: weight, start: nil)
        for path in Self.paths {
            for accumulate in [false, true] {
                var output = start
                Self.run(path, rows: rows, k: k, n: n, x: x, packed: packed, strips: 0..<(n / 32), accumulate: accumulate, into: &output)
                let product = accumulate ? zip(output, start).map { $0 - $1 } : output
                #expect(maxMixedError(product, exactOfRounded) < 1e-5, "path \(path) rows \(rows) k \(k) n \(n) accumulate \(accumulate)")
                for row in 0..<rows {
                    for column in 0..<n {
                        var magnitude = 0.0
                        for p in 0..<k { magnitude += abs(Double(x[row * k + p]) * Double(weight[p * n + column])) }
                        let error = abs(Double(product[row * n + column]) - Double(float32[row * n + column]))
                        if error > magnitude * 0x1.01p-7 + 1e-6 {
                            Issue.record("path \(path) rows \(rows) k \(k): element [\(row), \(column)] off by \(error), bound \(magnitude * 0x1p-7)")
                            return
                        }
                    }
                }
            }
        }
    }

    /// The vector kernel agrees with the portable one on the image and text graphs' inner sizes
    /// (k 768 and 3072), and over any split of the strips gives the same bits as one call.
    @Test(.enabled(if: hasVectorKernel, "this CPU has no AVX512-BF16"), arguments: [(53, 768, 96), (21, 3072, 64)])
    func vectorKernelMatchesPortable(rows: Int, k: Int, n: Int) {
        var generator = SplitMix64(seed: UInt64(rows + k))
        let x = generator.floats(rows * k, -1, 1)
        let packed = Self.bfloat16Strips(generator.floats(k * n, -0.1, 0.1), k: k, n: n)
        var fast = [Float](repeating: 0, count: rows * n), plain = fast, split = fast
        Self.run(.bfloat16AVX512, rows: rows, k: k, n: n, x: x, packed: packed, strips: 0..<(n / 32), accumulate: false, into: &fast)
        Self.run(.bfloat16Portable, rows: rows, k: k, n: n, x: x, packed: packed, strips: 0..<(n / 32), accumulate: false, into: &plain)
        #expect(maxMixedError(fast, plain) < 1e-6)
        Self.run(.bfloat16AVX512, rows: rows, k: k, n: n, x: x, packed: packed, strips: 1..<(n / 32), accumulate: false, into: &split)
        Self.run(.bfloat16AVX512, rows: rows, k: k, n: n, x: x, packed: packed, strips: 0..<1, accumulate: false, into: &split)
        #expect(split == fast)
    }

    /// `PackedGEMM.multiply` on a bfloat16 path: A in row blocks (2100 rows of 1024 make a 4 MB
    /// block of 2048 rows and a last one of 52), rows of A further apart than k, threads taking
    /// strips as they come; the same bits as the kernel called once on all of it. The weight's
    /// bfloat16 strips are made on first use and kept; the float32 strips are not unpacked.
    @Test func threadedWrapperMatchesOneCall() throws {
        let rows = 2100, k = 1024, n = 96, lda = 1030
        var generator = SplitMix64(seed: 5151)
        let values = generator.floats(rows * k, -1, 1)
        var x = [Float](repeating: .nan, count: rows * lda)
        for row in 0..<rows { for p in 0..<k { x[row * lda + p] = values[row * k + p] } }
        let weight = generator.floats(k * n, -0.1, 0.1)
        let tensor = try Tensor(weight, shape: [k, n]).packedStripsCopy()
        let strips = try #require(tensor.floatPackedStrips())
        #expect(!strips.hasBFloat16Strips)
        let packed = Self.bfloat16Strips(weight, k: k, n: n)
        let path: PackedGEMM.Path = Self.hasVectorKernel ? .bfloat16AVX512 : .bfloat16Portable
        var direct = [Float](repeating: 0, count: rows * n)
        Self.run(path, rows: rows, k: k, n: n, x: values, packed: packed, strips: 0..<3, accumulate: false, into: &direct)
        for accumulate in [false, true] {
            var threaded = [Float](repeating: accumulate ? 0.5 : .nan, count: rows * n)
            x.withUnsafeBufferPointer { a in
                threaded.withUnsafeMutableBufferPointer { c in
                    guard let a = a.baseAddress, let c = c.baseAddress else { return }
                    PackedGEMM.multiply(rows: rows, a: a, lda: lda, weights: strips, c: c, ldc: n, accumulate: accumulate, path: path)
                }
            }
            #expect(threaded == (accumulate ? direct.map { $0 + 0.5 } : direct), "accumulate \(accumulate)")
        }
        #expect(strips.hasBFloat16Strips)
        #expect(!strips.hasContiguousCopy)
    }
}

/// Float32 strips mapped from a file (the weight cache's case, `PackedStrips.fileBacked`) leave the
/// process's memory once their bfloat16 strips exist, and read back unchanged; strips in ordinary
/// memory are left alone.
@Suite struct BFloat16StripsReleaseTests {
    /// Resident kilobytes of the mapping that starts at `address` (/proc/self/smaps), nil if not found.
    static func residentKilobytes(mappingAt address: UnsafeRawPointer) -> Int? {
        // /proc files report size 0, so they are read to the end rather than by their size.
        guard let file = fopen("/proc/self/smaps", "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let start = String(UInt(bitPattern: address), radix: 16)
        var inside = false
        for line in text.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), line[..<dash].allSatisfy(\.isHexDigit), line.contains(" ") {
                inside = line[..<dash] == start[...]
                continue
            }
            if inside, line.hasPrefix("Rss:") {
                return Int(line.split(separator: " ").dropFirst().first ?? "")
            }
        }
        return nil
    }

    @Test func fileBackedFloat32StripsAreReleasedAfterRounding() throws {
        let k = 256, n = 512  // 512 KB of strips
        var generator = SplitMix64(seed: 31)
        let weight = generator.floats(k * n, -1, 1)
        let packed = PackedGEMMTests.pack(weight, k: k, n: n)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("strips-\(UInt32.random(in: 0...UInt32.max))").path
        defer { unlink(path) }
        try packed.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: path)) }
        let descriptor = open(path, O_RDONLY)
        try #require(descriptor >= 0)
        let byteCount = packed.count * MemoryLayout<Float>.size
        let mapping = mmap(nil, byteCount, PROT_READ, MAP_PRIVATE, descriptor, 0)
        close(descriptor)
        let base = try #require(mapping == MAP_FAILED ? nil : mapping)
        defer { munmap(base, byteCount) }
        let floats = base.assumingMemoryBound(to: Float.self)
        var sum: Float = 0
        for index in 0..<packed.count { sum += floats[index] }  // fault every page in
        #expect(sum.isFinite)
        let before = try #require(Self.residentKilobytes(mappingAt: base))
        #expect(before >= byteCount / 1024 - 4)

        let strips = PackedStrips(base: UnsafePointer(floats), rows: k, columns: n, fileBacked: true)
        let expected = BFloat16GEMMTests.bfloat16Strips(weight, k: k, n: n)
        #expect(Array(UnsafeBufferPointer(start: strips.bfloat16Strips(), count: expected.count)) == expected)
        let after = try #require(Self.residentKilobytes(mappingAt: base))
        #expect(after <= 8, "\(after) kB still resident of \(before)")
        #expect(Array(UnsafeBufferPointer(start: floats, count: packed.count)) == packed, "values changed after the release")

        // Ordinary memory: the same call leaves the float32 strips as they were.
        let copy = try Tensor(weight, shape: [k, n]).packedStripsCopy()
        let memoryStrips = try #require(copy.floatPackedStrips())
        #expect(!memoryStrips.fileBacked)
        _ = memoryStrips.bfloat16Strips()
        #expect(Array(UnsafeBufferPointer(start: memoryStrips.base, count: packed.count)) == packed)
    }
}
