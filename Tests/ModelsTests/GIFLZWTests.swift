import Foundation
import Testing
@testable import Models
import Tensor

/// The fast LZW decoder against its plain reference and against an encoder: valid streams of every code
/// size (table growth to 12 bits, the deferred clear, the KwKwK case, early clears), streams cut or ended
/// early, output buffers shorter than the stream, and random bytes.
@Suite("GIF LZW decoding")
struct GIFLZWTests {
    /// A GIF LZW encoder that mirrors the decoder's table state exactly, so every code it writes has the
    /// width the decoder expects. `clearEvery`: emit a clear code after that many codes (nil: never,
    /// so a long input fills the table and runs on with a full table: the deferred clear).
    static func encode(_ input: [UInt8], codeSize: Int, clearEvery: Int? = nil, endCode: Bool = true) -> [UInt8] {
        let clearCode = 1 << codeSize, endOfImage = clearCode + 1, firstFree = clearCode + 2
        var writer = BitWriter()
        var dictionary: [[UInt8]: Int] = [:]
        // The decoder's state before it reads the next code.
        var decoderNext = firstFree, decoderWidth = codeSize + 1, decoderHasPrevious = false
        var sinceClear = 0
        func emit(_ code: Int) {
            writer.write(code, width: decoderWidth)
            if code == clearCode {
                decoderNext = firstFree
                decoderWidth = codeSize + 1
                decoderHasPrevious = false
                dictionary.removeAll(keepingCapacity: true)
                sinceClear = 0
                return
            }
            if decoderHasPrevious && decoderNext < (1 << decoderWidth) { decoderNext += 1 }
            if decoderNext >= (1 << decoderWidth) && decoderWidth < GIFLZW.maximumBits { decoderWidth += 1 }
            decoderHasPrevious = true
            sinceClear += 1
        }
        func code(of string: [UInt8]) -> Int { string.count == 1 ? Int(string[0]) : dictionary[string] ?? -1 }
        emit(clearCode)
        var current: [UInt8] = []
        for byte in input {
            let extended = current + [byte]
            if current.isEmpty || code(of: extended) >= 0 {
                current = extended
                continue
            }
            emit(code(of: current))
            // The decoder defines this entry when it reads the next code, with the number it has free then.
            if firstFree + dictionary.count < GIFLZW.tableSize {
                dictionary[extended] = firstFree + dictionary.count
            }
            current = [byte]
            if let clearEvery, sinceClear >= clearEvery {
                emit(code(of: current))
                current = []
                emit(clearCode)
            }
        }
        if !current.isEmpty { emit(code(of: current)) }
        if endCode { emit(endOfImage) }
        return writer.flushed
    }

    struct BitWriter {
        var bytes: [UInt8] = []
        var accumulator = 0, count = 0
        mutating func write(_ value: Int, width: Int) {
            accumulator |= value << count
            count += width
            while count >= 8 {
                bytes.append(UInt8(accumulator & 0xFF))
                accumulator >>= 8
                count -= 8
            }
        }
        var flushed: [UInt8] { count > 0 ? bytes + [UInt8(accumulator & 0xFF)] : bytes }
    }

    static func fast(_ data: [UInt8], codeSize: Int, capacity: Int) -> (output: [UInt8], stop: GIFLZW.Stop) {
        var output = [UInt8](repeating: 0xAA, count: capacity)
        let result = output.withUnsafeMutableBufferPointer { out in
            data.withUnsafeBufferPointer { GIFLZW.decode(codeSize: codeSize, data: $0, into: out) }
        }
        return (Array(output.prefix(result.count)), result.stop)
    }

    /// The first index where the two differ (a length difference counts at the shorter one's end);
    /// nil when equal. Keeps failure messages short.
    static func firstDifference(_ left: [UInt8], _ right: [UInt8]) -> Int? {
        for index in 0..<min(left.count, right.count) where left[index] != right[index] { return index }
        return left.count == right.count ? nil : min(left.count, right.count)
    }

    /// Inputs that exercise the table: runs (long strings, KwKwK), a few symbols repeated, and noise.
    static func sampleInput(_ generator: inout SplitMix64, count: Int, symbols: Int) -> [UInt8] {
        var input: [UInt8] = []
        input.reserveCapacity(count)
        while input.count < count {
            let symbol = UInt8(Int.random(in: 0..<symbols, using: &generator))
            let run = Bool.random(using: &generator) ? Int.random(in: 1...300, using: &generator) : 1
            input += [UInt8](repeating: symbol, count: min(run, count - input.count))
        }
        return input
    }

    @Test("valid streams of code sizes 1-11 decode to their input, fast and reference alike")
    func roundTrip() {
        var generator = SplitMix64(seed: 11)
        var checked = 0
        for codeSize in 1...11 {
            for variant in 0..<6 {
                let symbols = min(1 << codeSize, 256)
                let count = [1, 7, 2_000, 30_000, 90_000, 5_000][variant]
                let input = Self.sampleInput(&generator, count: count, symbols: symbols)
                let clearEvery: Int? = variant == 5 ? Int.random(in: 3...700, using: &generator) : nil
                let data = Self.encode(input, codeSize: codeSize, clearEvery: clearEvery)
                let fast = Self.fast(data, codeSize: codeSize, capacity: input.count)
                let reference = GIFLZW.referenceDecode(codeSize: codeSize, data: data, capacity: input.count)
                #expect(Self.firstDifference(fast.output, input) == nil, "code size \(codeSize), variant \(variant)")
                #expect(Self.firstDifference(reference.output, input) == nil, "code size \(codeSize), variant \(variant)")
                #expect(fast.stop == .full && reference.stop == .full)
                // With room to spare the end code stops both.
                let roomy = Self.fast(data, codeSize: codeSize, capacity: input.count + 5)
                #expect(Self.firstDifference(roomy.output, input) == nil && roomy.stop == .endOfStream)
                checked += 1
            }
        }
        #expect(checked == 66)
    }

    @Test("a long input fills the table and runs on with it full (the deferred clear)")
    func deferredClear() {
        var generator = SplitMix64(seed: 5)
        // Noise over 256 symbols defines a table entry per code, so 4096 entries come fast.
        let input = (0..<60_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let data = Self.encode(input, codeSize: 8)
        // More codes than the table holds: it filled up and stayed full.
        #expect(data.count * 8 / 12 > GIFLZW.tableSize)
        #expect(Self.firstDifference(Self.fast(data, codeSize: 8, capacity: input.count).output, input) == nil)
        #expect(Self.firstDifference(GIFLZW.referenceDecode(codeSize: 8, data: data, capacity: input.count).output, input) == nil)
    }

    @Test("cut streams, short outputs and streams without an end code agree with the reference")
    func cutStreams() {
        var generator = SplitMix64(seed: 3)
        for trial in 0..<200 {
            let codeSize = Int.random(in: 1...8, using: &generator)
            let input = Self.sampleInput(&generator, count: Int.random(in: 1...20_000, using: &generator),
                                         symbols: 1 << codeSize)
            var data = Self.encode(input, codeSize: codeSize, endCode: Bool.random(using: &generator))
            if Bool.random(using: &generator) { data = Array(data.prefix(Int.random(in: 0...data.count, using: &generator))) }
            let capacity = Int.random(in: 0...(input.count + 10), using: &generator)
            let fast = Self.fast(data, codeSize: codeSize, capacity: capacity)
            let reference = GIFLZW.referenceDecode(codeSize: codeSize, data: data, capacity: capacity)
            #expect(Self.firstDifference(fast.output, reference.output) == nil && fast.stop == reference.stop, "trial \(trial)")
            // Whatever was decoded is a prefix of the input.
            #expect(Self.firstDifference(Array(input.prefix(fast.output.count)), fast.output) == nil, "trial \(trial)")
        }
    }

    @Test("random bytes decode identically with both decoders, for every code size")
    func randomBytes() {
        var generator = SplitMix64(seed: 17)
        var stops: Set<String> = []
        for trial in 0..<3_000 {
            let codeSize = Int.random(in: 0...12, using: &generator)
            let data = (0..<Int.random(in: 0...600, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let capacity = Int.random(in: 0...4_000, using: &generator)
            let fast = Self.fast(data, codeSize: codeSize, capacity: capacity)
            let reference = GIFLZW.referenceDecode(codeSize: codeSize, data: data, capacity: capacity)
            #expect(Self.firstDifference(fast.output, reference.output) == nil && fast.stop == reference.stop,
                    "trial \(trial), code size \(codeSize)")
            stops.insert("\(fast.stop)")
        }
        // Every way of stopping was reached.
        #expect(stops == ["full", "endOfStream", "invalidCode", "invalidCodeSize"])
    }

    @Test("code sizes 0 and 12 decode nothing, as FFmpeg refuses them")
    func invalidCodeSizes() {
        for codeSize in [0, 12, 13] {
            #expect(Self.fast([0x55, 0x55], codeSize: codeSize, capacity: 10) == ([], .invalidCodeSize))
        }
    }
}
