/// GIF's variable-width LZW, decoded with FFmpeg's rules (libavcodec `lzw.c`, GIF mode), because ailia
/// reads GIFs through OpenCV, which decodes them with FFmpeg. Spec: pipeline.md §3.1.
///
/// The stream: codes of `codeSize + 1` bits, least significant bit first, growing by one bit when the next
/// free table slot reaches `1 << width` (up to 12 bits, after which the table stops growing until a clear
/// code: the "deferred clear"). `1 << codeSize` clears, the code after it ends the image.
///
/// FFmpeg's rules where streams go wrong, kept here so a damaged GIF decodes to what OpenCV shows:
/// - a code beyond the next free slot (or equal to it with no previous code) stops decoding;
/// - running out of data stops decoding, as an end code would;
/// - literals of code sizes above 8 keep their low 8 bits (FFmpeg's tables are bytes);
/// - code sizes outside 1...11 decode nothing (FFmpeg's `ff_lzw_decode_init` refuses them).
///
/// `decode` is the fast version. A code's string always occurs earlier in the output: the entry made
/// after code `c` is `c`'s string followed by the first byte the next code emits, which is exactly the
/// `length(c) + 1` bytes starting where `c` was emitted. So the table holds (position, length) pairs and
/// a code is one copy from earlier output, as in LZ77, instead of a walk down a prefix chain one byte at a
/// time. `referenceDecode` is the prefix-chain version, kept as the plain reference the tests compare
/// it with.
enum GIFLZW {
    static let maximumBits = 12
    static let tableSize = 1 << maximumBits

    /// Why decoding stopped.
    enum Stop: Equatable, Sendable {
        /// The output was filled.
        case full
        /// The end code (or the end of the data) came first.
        case endOfStream
        /// A code the table did not hold yet.
        case invalidCode
        /// A code size outside 1...11.
        case invalidCodeSize
    }

    static func isValid(codeSize: Int) -> Bool { (1..<maximumBits).contains(codeSize) }

    /// Decodes `data` (the image's sub-block payloads, concatenated) into `output`; returns how many bytes
    /// were written and why decoding stopped. Never reads or writes outside the two buffers.
    static func decode(codeSize: Int, data: UnsafeBufferPointer<UInt8>,
                       into output: UnsafeMutableBufferPointer<UInt8>) -> (count: Int, stop: Stop) {
        guard isValid(codeSize: codeSize) else { return (0, .invalidCodeSize) }
        guard let out = output.baseAddress, output.count > 0 else { return (0, .full) }
        let capacity = output.count
        let input = data.baseAddress
        let inputCount = data.count
        // Entries below `firstFree` are literals and the two control codes; their slots stay unused.
        let position = UnsafeMutablePointer<Int32>.allocate(capacity: tableSize)
        let length = UnsafeMutablePointer<Int32>.allocate(capacity: tableSize)
        defer { position.deallocate(); length.deallocate() }

        let clearCode = 1 << codeSize
        let endCode = clearCode + 1
        let firstFree = clearCode + 2
        var width = codeSize + 1
        var mask: UInt64 = (1 << UInt64(width)) - 1
        var nextFree = firstFree
        var growAt = 1 << width
        var bits: UInt64 = 0
        var bitCount = 0
        var read = 0
        var written = 0
        // Where the previous code's string was emitted, and its length; -1: no previous code since a clear.
        var previousStart = 0
        var previousLength = -1

        while written < capacity {
            if bitCount < width {
                // Refill to at least 57 bits: 8 bytes at once when they are there, else byte by byte.
                if let input, read + 8 <= inputCount {
                    let word = UInt64(littleEndian: UnsafeRawPointer(input + read).loadUnaligned(as: UInt64.self))
                    bits |= word << UInt64(bitCount)
                    read += (63 - bitCount) >> 3
                    bitCount |= 56
                } else if let input {
                    while bitCount <= 56 && read < inputCount {
                        bits |= UInt64(input[read]) << UInt64(bitCount)
                        read += 1
                        bitCount += 8
                    }
                }
                if bitCount < width { return (written, .endOfStream) }
            }
            let code = Int(bits & mask)
            bits >>= UInt64(width)
            bitCount -= width

            if code == clearCode {
                width = codeSize + 1
                mask = (1 << UInt64(width)) - 1
                nextFree = firstFree
                growAt = 1 << width
                previousLength = -1
                continue
            }
            if code == endCode { return (written, .endOfStream) }

            let start = written
            let room = capacity - written
            let emitted: Int
            if code < clearCode {
                out[written] = UInt8(truncatingIfNeeded: code)
                emitted = 1
            } else if code < nextFree {
                // An entry's string ends at most one byte after where the code that made it began, so it
                // lies wholly before `written`: the copy never overlaps.
                emitted = Int(length[code])
                copy(from: out + Int(position[code]), to: out + written, count: min(emitted, room))
            } else if code == nextFree && previousLength >= 0 {
                // "KwKwK": the code being defined now, the previous string plus its own first byte.
                emitted = previousLength + 1
                copy(from: out + previousStart, to: out + written, count: min(previousLength, room))
                if emitted <= room { out[written + previousLength] = out[previousStart] }
            } else {
                return (written, .invalidCode)
            }
            written += min(emitted, room)

            if previousLength >= 0 && nextFree < growAt {
                position[nextFree] = Int32(previousStart)
                length[nextFree] = Int32(previousLength + 1)
                nextFree += 1
            }
            if nextFree >= growAt && width < maximumBits {
                width += 1
                mask = (1 << UInt64(width)) - 1
                growAt <<= 1
            }
            previousStart = start
            previousLength = emitted
        }
        return (written, .full)
    }

    @inline(__always)
    private static func copy(from source: UnsafeMutablePointer<UInt8>, to destination: UnsafeMutablePointer<UInt8>, count: Int) {
        // Most strings in GIF frames are short; a byte loop beats a call to memcpy below a cache line.
        if count <= 16 {
            for index in 0..<count { destination[index] = source[index] }
        } else {
            destination.update(from: source, count: count)
        }
    }

    /// The plain version, FFmpeg's algorithm as written: a prefix/suffix table walked backwards onto a
    /// stack. Same results as `decode` for every input; the tests compare them.
    static func referenceDecode(codeSize: Int, data: [UInt8], capacity: Int) -> (output: [UInt8], stop: Stop) {
        guard isValid(codeSize: codeSize) else { return ([], .invalidCodeSize) }
        var prefix = [Int](repeating: 0, count: tableSize)
        var suffix = [UInt8](repeating: 0, count: tableSize)
        let clearCode = 1 << codeSize, endCode = clearCode + 1, firstFree = clearCode + 2
        var width = codeSize + 1
        var nextFree = firstFree
        var growAt = 1 << width
        var bitBuffer = 0, bitCount = 0, read = 0
        var previousCode = -1, previousFirst = -1
        var output: [UInt8] = []
        while output.count < capacity {
            while bitCount < width && read < data.count {
                bitBuffer |= Int(data[read]) << bitCount
                read += 1
                bitCount += 8
            }
            if bitCount < width { return (output, .endOfStream) }
            let code = bitBuffer & ((1 << width) - 1)
            bitBuffer >>= width
            bitCount -= width
            if code == clearCode {
                width = codeSize + 1
                nextFree = firstFree
                growAt = 1 << width
                previousCode = -1
                previousFirst = -1
                continue
            }
            if code == endCode { return (output, .endOfStream) }
            var stack: [UInt8] = []
            var walk = code
            if code == nextFree && previousFirst >= 0 {
                stack.append(UInt8(previousFirst))
                walk = previousCode
            } else if code >= nextFree {
                return (output, .invalidCode)
            }
            while walk >= firstFree {
                stack.append(suffix[walk])
                walk = prefix[walk]
            }
            let first = UInt8(truncatingIfNeeded: walk)
            stack.append(first)
            for byte in stack.reversed() where output.count < capacity { output.append(byte) }
            if nextFree < growAt && previousCode >= 0 {
                suffix[nextFree] = first
                prefix[nextFree] = previousCode
                nextFree += 1
            }
            previousFirst = Int(first)
            previousCode = code
            if nextFree >= growAt && width < maximumBits {
                growAt <<= 1
                width += 1
            }
        }
        return (output, .full)
    }
}
