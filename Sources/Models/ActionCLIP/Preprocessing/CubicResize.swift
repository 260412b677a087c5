/// OpenCV `cv::resize(..., INTER_CUBIC)` for 8-bit 3-channel images, generic (non-IPP) path,
/// reproduced bit-exactly (spec pipeline.md §4.2).
///
/// Why each step is the way it is:
/// - Source positions are computed in double and cast to float, weights in float32 with A = -0.75 in
///   OpenCV's exact evaluation order, then rounded half-to-even to int16 with 11 fractional bits.
/// - The horizontal pass is an exact integer sum per channel (edge taps clamped, i.e. replicated).
/// - The vertical pass mirrors OpenCV's `VResizeCubicVec_32s8u`: the first floor(n/8)*8 elements of a
///   row (n = width*3) go through 128-bit float SIMD (products and sums each rounded to float32, no
///   FMA, round-half-even), the tail through the integer formula `(sum + 2^21) >> 22`. Both saturate.
///
/// `resize(_:width:height:region:)` computes only a rectangle of the full resized image. Each output
/// pixel depends only on its own position, so the crop of a full resize equals the resize restricted
/// to the crop; the SIMD/tail split is decided by the element's position in the *full* row.
public enum CubicResize {
    /// Per-axis interpolation table over destination indices `range`: for destination index d, the
    /// unclamped first tap `start[d - range.lowerBound]` (s - 1) and four int16 weights at
    /// `weights[4(d - range.lowerBound)...]`. Only the needed range is built, so a huge destination
    /// (a very elongated frame) costs nothing beyond the crop.
    struct AxisTable {
        var start: [Int]
        var weights: [Int32]
    }

    static func axisTable(source: Int, destination: Int, range: Range<Int>) -> AxisTable {
        let inverseScale = Double(destination) / Double(source)
        let scale = 1.0 / inverseScale
        var start = [Int](repeating: 0, count: range.count)
        var weights = [Int32](repeating: 0, count: range.count * 4)
        for (slot, index) in range.enumerated() {
            let position = Float((Double(index) + 0.5) * scale - 0.5)
            let floorValue = position.rounded(.down)
            let fraction = position - floorValue
            start[slot] = Int(floorValue) - 1
            let coefficients = cubicCoefficients(fraction)
            for tap in 0..<4 {
                weights[slot * 4 + tap] = Int32((coefficients[tap] * 2048).rounded(.toNearestOrEven))
            }
        }
        return AxisTable(start: start, weights: weights)
    }

    /// OpenCV's `interpolateCubic`, float32, same association order (`x*x` is `(e*x)*x`).
    static func cubicCoefficients(_ x: Float) -> [Float] {
        let a: Float = -0.75
        let xPlusOne = x + 1
        let c0 = ((a * xPlusOne - 5 * a) * xPlusOne + 8 * a) * xPlusOne - 4 * a
        let c1 = ((a + 2) * x - (a + 3)) * x * x + 1
        let oneMinusX = 1 - x
        let c2 = ((a + 2) * oneMinusX - (a + 3)) * oneMinusX * oneMinusX + 1
        let c3 = 1 - c0 - c1 - c2
        return [c0, c1, c2, c3]
    }

    /// A rectangle in destination pixel coordinates.
    public struct Region: Sendable, Equatable {
        public var x: Int, y: Int, width: Int, height: Int
        /// A rectangle at (`x`, `y`) of `width` x `height` pixels.
        public init(x: Int, y: Int, width: Int, height: Int) {
            self.x = x; self.y = y; self.width = width; self.height = height
        }
    }

    /// Resizes a packed BGR (3-channel) `frame` to `width` x `height` and returns the pixels of
    /// `region` (default: all), packed `region.height` rows of `region.width * 3` bytes.
    /// The region must lie inside the destination (checked by callers; clamped here).
    public static func resize(_ frame: Frame, width: Int, height: Int, region: Region? = nil) -> [UInt8] {
        let area = region ?? Region(x: 0, y: 0, width: width, height: height)
        let regionX = max(0, min(area.x, width)), regionY = max(0, min(area.y, height))
        let regionWidth = max(0, min(area.width, width - regionX))
        let regionHeight = max(0, min(area.height, height - regionY))
        var output = [UInt8](repeating: 0, count: regionWidth * regionHeight * 3)
        guard regionWidth > 0, regionHeight > 0 else { return output }
        let sourceWidth = frame.width, sourceHeight = frame.height
        let horizontal = axisTable(source: sourceWidth, destination: width, range: regionX..<(regionX + regionWidth))
        let vertical = axisTable(source: sourceHeight, destination: height, range: regionY..<(regionY + regionHeight))

        // Source rows touched by the region's vertical taps.
        let firstRow = max(0, vertical.start[0])
        let lastRow = min(sourceHeight - 1, vertical.start[regionHeight - 1] + 3)
        let rowCount = lastRow - firstRow + 1
        let rowElements = regionWidth * 3
        var horizontalRows = [Int32](repeating: 0, count: rowCount * rowElements)

        // Clamped horizontal tap offsets (in bytes) for each region column.
        var tapOffsets = [Int](repeating: 0, count: regionWidth * 4)
        var tapWeights = [Int32](repeating: 0, count: regionWidth * 4)
        for column in 0..<regionWidth {
            for tap in 0..<4 {
                let sourceColumn = min(max(horizontal.start[column] + tap, 0), sourceWidth - 1)
                tapOffsets[column * 4 + tap] = sourceColumn * 3
                tapWeights[column * 4 + tap] = horizontal.weights[column * 4 + tap]
            }
        }
        frame.pixels.withUnsafeBufferPointer { source in
            tapOffsets.withUnsafeBufferPointer { offsets in
                tapWeights.withUnsafeBufferPointer { weights in
                    horizontalRows.withUnsafeMutableBufferPointer { rows in
                        for row in 0..<rowCount {
                            horizontalPass(source: UnsafeBufferPointer(rebasing: source[((firstRow + row) * sourceWidth * 3)...]),
                                           offsets: offsets, weights: weights,
                                           destination: UnsafeMutableBufferPointer(rebasing: rows[(row * rowElements)...]),
                                           columns: regionWidth)
                        }
                    }
                }
            }
        }

        // Elements of the full row before `simdLimit` take OpenCV's float SIMD route.
        let simdLimit = (width * 3 / 8) * 8
        let regionStart = regionX * 3
        let floatCount = max(0, min(rowElements, simdLimit - regionStart))
        horizontalRows.withUnsafeBufferPointer { rows in
            output.withUnsafeMutableBufferPointer { out in
                for outputRow in 0..<regionHeight {
                    var taps: [UnsafeBufferPointer<Int32>] = []
                    var weights: [Int32] = []
                    for tap in 0..<4 {
                        let sourceRow = min(max(vertical.start[outputRow] + tap, 0), sourceHeight - 1) - firstRow
                        taps.append(UnsafeBufferPointer(rebasing: rows[(sourceRow * rowElements)..<((sourceRow + 1) * rowElements)]))
                        weights.append(vertical.weights[outputRow * 4 + tap])
                    }
                    let target = UnsafeMutableBufferPointer(rebasing: out[(outputRow * rowElements)..<((outputRow + 1) * rowElements)])
                    verticalFloat(taps[0], taps[1], taps[2], taps[3], weights: weights, into: target, range: 0..<floatCount)
                    verticalInteger(taps[0], taps[1], taps[2], taps[3], weights: weights, into: target, range: floatCount..<rowElements)
                }
            }
        }
        return output
    }

    @inline(__always)
    static func horizontalPass(source: UnsafeBufferPointer<UInt8>, offsets: UnsafeBufferPointer<Int>,
                               weights: UnsafeBufferPointer<Int32>, destination: UnsafeMutableBufferPointer<Int32>,
                               columns: Int) {
        for column in 0..<columns {
            let o0 = offsets[column * 4], o1 = offsets[column * 4 + 1]
            let o2 = offsets[column * 4 + 2], o3 = offsets[column * 4 + 3]
            let w0 = weights[column * 4], w1 = weights[column * 4 + 1]
            let w2 = weights[column * 4 + 2], w3 = weights[column * 4 + 3]
            for channel in 0..<3 {
                destination[column * 3 + channel] =
                    Int32(source[o0 + channel]) &* w0 &+ Int32(source[o1 + channel]) &* w1
                    &+ Int32(source[o2 + channel]) &* w2 &+ Int32(source[o3 + channel]) &* w3
            }
        }
    }

    /// OpenCV's SIMD route: float32 products and sums, innermost first (S3*b3, then S2*b2 + acc, ...).
    @inline(__always)
    static func verticalFloat(_ s0: UnsafeBufferPointer<Int32>, _ s1: UnsafeBufferPointer<Int32>,
                              _ s2: UnsafeBufferPointer<Int32>, _ s3: UnsafeBufferPointer<Int32>,
                              weights: [Int32], into output: UnsafeMutableBufferPointer<UInt8>, range: Range<Int>) {
        let scale: Float = 1.0 / 4_194_304.0
        let b0 = Float(weights[0]) * scale, b1 = Float(weights[1]) * scale
        let b2 = Float(weights[2]) * scale, b3 = Float(weights[3]) * scale
        // Adding 1.5*2^23 leaves round_half_even(acc) in the low mantissa bits (|acc| < 2^22).
        let magic: Float = 12_582_912.0
        let magicBits = Int32(bitPattern: magic.bitPattern)
        for index in range {
            var accumulator = Float(s3[index]) * b3
            accumulator = Float(s2[index]) * b2 + accumulator
            accumulator = Float(s1[index]) * b1 + accumulator
            accumulator = Float(s0[index]) * b0 + accumulator
            let rounded = Int32(bitPattern: (accumulator + magic).bitPattern) &- magicBits
            output[index] = UInt8(truncatingIfNeeded: Swift.min(Swift.max(rounded, 0), 255))
        }
    }

    /// OpenCV's scalar tail: fixed-point sum, rounding shift by 22 bits, saturation.
    @inline(__always)
    static func verticalInteger(_ s0: UnsafeBufferPointer<Int32>, _ s1: UnsafeBufferPointer<Int32>,
                                _ s2: UnsafeBufferPointer<Int32>, _ s3: UnsafeBufferPointer<Int32>,
                                weights: [Int32], into output: UnsafeMutableBufferPointer<UInt8>, range: Range<Int>) {
        let w0 = Int(weights[0]), w1 = Int(weights[1]), w2 = Int(weights[2]), w3 = Int(weights[3])
        for index in range {
            let sum = Int(s0[index]) * w0 + Int(s1[index]) * w1 + Int(s2[index]) * w2 + Int(s3[index]) * w3
            let value = (sum + (1 << 21)) >> 22
            output[index] = UInt8(truncatingIfNeeded: Swift.min(Swift.max(value, 0), 255))
        }
    }
}

/// Plain, obviously-correct implementations used to check the fast kernels.
public enum Reference {
    /// Full OpenCV generic INTER_CUBIC resize of a packed `channels`-interleaved uint8 image, written
    /// straight from spec §4.2 with no region logic or pointer tricks.
    public static func cubicResize(_ pixels: [UInt8], width: Int, height: Int, channels: Int,
                                   toWidth: Int, toHeight: Int) -> [UInt8] {
        func table(_ source: Int, _ destination: Int) -> [(first: Int, weights: [Int])] {
            let scale = 1.0 / (Double(destination) / Double(source))
            return (0..<destination).map { index in
                let position = Float((Double(index) + 0.5) * scale - 0.5)
                let whole = position.rounded(.down)
                let weights = CubicResize.cubicCoefficients(position - whole)
                    .map { Int(($0 * 2048).rounded(.toNearestOrEven)) }
                return (Int(whole) - 1, weights)
            }
        }
        let xTable = table(width, toWidth), yTable = table(height, toHeight)
        var horizontal = [Int](repeating: 0, count: height * toWidth * channels)
        for row in 0..<height {
            for column in 0..<toWidth {
                for channel in 0..<channels {
                    var sum = 0
                    for tap in 0..<4 {
                        let x = min(max(xTable[column].first + tap, 0), width - 1)
                        sum += Int(pixels[(row * width + x) * channels + channel]) * xTable[column].weights[tap]
                    }
                    horizontal[(row * toWidth + column) * channels + channel] = sum
                }
            }
        }
        let rowLength = toWidth * channels
        let simdLimit = (rowLength / 8) * 8
        var output = [UInt8](repeating: 0, count: toHeight * rowLength)
        for row in 0..<toHeight {
            let rows = (0..<4).map { min(max(yTable[row].first + $0, 0), height - 1) }
            let weights = yTable[row].weights
            for element in 0..<rowLength {
                let taps = rows.map { horizontal[$0 * rowLength + element] }
                var value: Int
                if element < simdLimit {
                    let b = weights.map { Float(Float($0) * Float(1.0 / 4_194_304.0)) }
                    var accumulator = Float(taps[3]) * b[3]
                    accumulator = Float(taps[2]) * b[2] + accumulator
                    accumulator = Float(taps[1]) * b[1] + accumulator
                    accumulator = Float(taps[0]) * b[0] + accumulator
                    value = Int(accumulator.rounded(.toNearestOrEven))
                } else {
                    let sum = (0..<4).reduce(0) { $0 + taps[$1] * weights[$1] }
                    value = (sum + (1 << 21)) >> 22
                }
                output[row * rowLength + element] = UInt8(min(max(value, 0), 255))
            }
        }
        return output
    }
}
