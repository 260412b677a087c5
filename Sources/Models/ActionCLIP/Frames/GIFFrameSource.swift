import CGif
import Foundation

/// GIF decoding composited exactly like FFmpeg's GIF decoder (libavcodec `gifdec.c`), which is what
/// `cv2.VideoCapture` (and so ailia) uses. Spec: pipeline.md §3.1.
///
/// giflib parses the file's blocks (descriptors, palettes, extensions, and the image data's sub-blocks,
/// through its record-level calls); `GIFLZW` decodes the image data with FFmpeg's LZW rules, and
/// `GIFCompositor` replays FFmpeg's canvas rules. giflib's own LZW decoder (`DGifSlurp`) is not used: it
/// was 60 % of the time to open the sample GIF, and it refuses streams FFmpeg draws (FFmpeg draws a short
/// or damaged frame up to its last complete line).
///
/// Memory: opening keeps only each frame's compressed data (at most the file's size). `frames(at:)`
/// decodes frames 0 through the largest index requested, one at a time into one buffer of indices, on one
/// canvas, and copies out only the requested ones.
///
/// Truncated files: a frame whose data the file cuts off is dropped with a warning in `warnings`, and the
/// complete frames before it are kept (FFmpeg would also show the partial frame; ailia never reaches it
/// reliably either). A file without a complete frame is rejected.
public final class GIFFrameSource: FrameSource {
    public let path: String
    public let frameCount: Int
    public private(set) var warnings: [String] = []
    /// Canvas (logical screen) size.
    public let width: Int
    public let height: Int

    /// One image as the file declares it; its LZW data is `imageData[dataRange]`.
    struct Record {
        var left: Int, top: Int, width: Int, height: Int
        var interlaced: Bool
        var localPalette: [UInt32]?
        /// From the graphic control extension before the image (the last one, as FFmpeg reads them).
        var transparentIndex: Int
        var disposal: Int
        var codeSize: Int
        var dataRange: Range<Int>
    }

    private let globalPalette: [UInt32]?
    private let backgroundIndex: Int
    private let records: [Record]
    /// Every image's LZW data, sub-block lengths removed, back to back.
    private let imageData: [UInt8]

    /// Opens and parses the whole GIF (no pixel is decoded yet). Throws `FrameError` for unreadable,
    /// oversized or frameless files.
    public init(path: String) throws {
        self.path = path
        var errorCode: Int32 = 0
        guard let gif = DGifOpenFileName(path, &errorCode) else {
            throw FrameError.notAVideo(path: path, reason: "giflib: \(GIFFrameSource.message(errorCode))")
        }
        defer { DGifCloseFile(gif, &errorCode) }
        let canvasWidth = Int(gif.pointee.SWidth)
        let canvasHeight = Int(gif.pointee.SHeight)
        try FrameLimits.check(width: canvasWidth, height: canvasHeight, path: path)
        // Bounds each frame's declared size by its data, so nothing sized from a descriptor is trusted.
        try GIFPrescan.check(path: path)
        let parsed = GIFFrameSource.readRecords(gif)
        guard !parsed.records.isEmpty else {
            guard let failure = parsed.failure else { throw FrameError.noFrames(path: path) }
            throw FrameError.decodeFailed(path: path, reason: "giflib: \(GIFFrameSource.message(failure))")
        }
        if let failure = parsed.failure {
            warnings.append("\(path): GIF is truncated or corrupt (giflib: \(GIFFrameSource.message(failure))); "
                            + "using its \(parsed.records.count) complete frames")
        }
        globalPalette = GIFFrameSource.palette(gif.pointee.SColorMap)
        backgroundIndex = Int(gif.pointee.SBackGroundColor)
        records = parsed.records
        imageData = parsed.data
        width = canvasWidth
        height = canvasHeight
        frameCount = parsed.records.count
    }

    /// Reads every block through giflib's record calls. Returns the complete images and, when the file
    /// ended or broke before its trailer, giflib's error code.
    private static func readRecords(_ gif: UnsafeMutablePointer<GifFileType>) -> (records: [Record], data: [UInt8], failure: Int32?) {
        var records: [Record] = []
        var data: [UInt8] = []
        // FFmpeg's scope for a graphic control extension: the next image only.
        var transparentIndex = -1
        var disposal = 0
        while true {
            var type = UNDEFINED_RECORD_TYPE
            guard DGifGetRecordType(gif, &type) == GIF_OK else { return (records, data, gif.pointee.Error) }
            switch type {
            case IMAGE_DESC_RECORD_TYPE:
                let start = data.count
                var codeSize: Int32 = 0
                var block: UnsafeMutablePointer<GifByteType>?
                guard DGifGetImageDesc(gif) == GIF_OK, DGifGetCode(gif, &codeSize, &block) == GIF_OK else {
                    return (records, data, gif.pointee.Error)
                }
                while let current = block {
                    // giflib's blocks are Pascal strings: byte 0 is the length.
                    data.append(contentsOf: UnsafeBufferPointer(start: current + 1, count: Int(current[0])))
                    guard DGifGetCodeNext(gif, &block) == GIF_OK else { return (records, data, gif.pointee.Error) }
                }
                let descriptor = gif.pointee.Image
                records.append(Record(
                    left: Int(descriptor.Left), top: Int(descriptor.Top),
                    width: Int(descriptor.Width), height: Int(descriptor.Height),
                    interlaced: descriptor.Interlace, localPalette: palette(descriptor.ColorMap),
                    transparentIndex: transparentIndex, disposal: disposal,
                    codeSize: Int(codeSize), dataRange: start..<data.count))
                transparentIndex = -1
                disposal = 0
            case EXTENSION_RECORD_TYPE:
                var function: Int32 = 0
                var block: UnsafeMutablePointer<GifByteType>?
                guard DGifGetExtension(gif, &function, &block) == GIF_OK else { return (records, data, gif.pointee.Error) }
                // A graphic control extension's first block is 4 bytes: flags, delay (2), transparent index.
                // FFmpeg ignores one of any other length.
                if function == GRAPHICS_EXT_FUNC_CODE, let first = block, first[0] == 4 {
                    let flags = Int(first[1])
                    transparentIndex = flags & 1 != 0 ? Int(first[4]) : -1
                    disposal = (flags >> 2) & 7
                }
                while block != nil {
                    guard DGifGetExtensionNext(gif, &block) == GIF_OK else { return (records, data, gif.pointee.Error) }
                }
            case TERMINATE_RECORD_TYPE:
                return (records, data, nil)
            default:
                return (records, data, D_GIF_ERR_WRONG_RECORD)
            }
        }
    }

    /// Composited frames at `indices` (BGR), decoding sequentially from frame 0 up to the largest index.
    public func frames(at indices: [Int]) throws -> [Frame] {
        try validate(indices)
        guard let last = indices.max() else { return [] }
        var wanted: [Int: [Int]] = [:]  // frame index -> positions in the output
        for (position, index) in indices.enumerated() { wanted[index, default: []].append(position) }
        var output = [Frame?](repeating: nil, count: indices.count)
        var compositor = GIFCompositor(width: width, height: height, globalPalette: globalPalette,
                                       backgroundIndex: backgroundIndex)
        // FFmpeg decodes at most the clipped frame: lines of at most the canvas width, at most its height.
        var pixels = [UInt8](repeating: 0, count: width * height)
        // The first damaged frame of this decode, reported once (FFmpeg logs each; one line is enough here).
        var damage: String?
        for index in 0...last {
            let record = records[index]
            guard record.localPalette != nil || compositor.hasGlobalPalette else {
                throw FrameError.decodeFailed(path: path, reason: "frame \(index) has neither a local nor a global colour map")
            }
            let geometry = GIFCompositor.Geometry(left: record.left, top: record.top,
                                                  width: record.width, height: record.height,
                                                  canvasWidth: width, canvasHeight: height)
            let wantedPixels = min(pixels.count, geometry.lineWidth * geometry.lineCount)
            let decoded = pixels.withUnsafeMutableBufferPointer { raster in
                imageData.withUnsafeBufferPointer { all in
                    GIFLZW.decode(codeSize: record.codeSize,
                                  data: UnsafeBufferPointer(rebasing: all[record.dataRange]),
                                  into: UnsafeMutableBufferPointer(rebasing: raster[0..<wantedPixels]))
                }
            }
            if decoded.stop != .full, damage == nil {
                damage = "\(path): frame \(index)'s image data "
                    + (decoded.stop == .invalidCodeSize ? "has an invalid LZW code size (\(record.codeSize))"
                       : "ends after \(decoded.count) of \(wantedPixels) pixels")
                    + "; drawn up to its last complete line, as FFmpeg does"
            }
            pixels.withUnsafeBufferPointer { raster in
                compositor.draw(GIFCompositor.Image(
                    geometry: geometry,
                    indices: UnsafeBufferPointer(rebasing: raster[0..<decoded.count]),
                    localPalette: record.localPalette,
                    interlaced: record.interlaced,
                    transparentIndex: record.transparentIndex,
                    disposal: record.disposal), isFirst: index == 0)
            }
            if let positions = wanted[index] {
                let frame = try compositor.snapshotBGR()
                for position in positions { output[position] = frame }
            }
        }
        if let damage, !warnings.contains(damage) { warnings.append(damage) }
        return output.compactMap { $0 }
    }

    private static func palette(_ map: UnsafeMutablePointer<ColorMapObject>?) -> [UInt32]? {
        guard let map, let colors = map.pointee.Colors else { return nil }
        let count = max(0, min(256, Int(map.pointee.ColorCount)))
        return (0..<count).map { index in
            let color = colors[index]
            return 0xFF00_0000 | UInt32(color.Red) << 16 | UInt32(color.Green) << 8 | UInt32(color.Blue)
        }
    }

    static func message(_ code: Int32) -> String {
        if let text = GifErrorString(code) { return "\(String(cString: text)) (code \(code))" }
        return "error code \(code)"
    }
}

/// FFmpeg's GIF canvas rules (libavcodec `gifdec.c`), on an ARGB canvas of `UInt32`.
///
/// Palettes are kept as 256-entry tables the way FFmpeg keeps them: the global table is zero beyond its
/// size (FFmpeg's context is zero-initialised), and the local table keeps entries from earlier, larger
/// local palettes beyond the current one's size. So an out-of-range index reads exactly what FFmpeg reads
/// (transparent black, shown as black, for a never-written entry).
struct GIFCompositor {
    /// FFmpeg's default `trans_color`: transparent white, which becomes (255,255,255) once alpha is dropped.
    static let transparent: UInt32 = 0x00FF_FFFF

    /// FFmpeg's geometry rules for one image: a zero or wider-than-canvas width becomes the canvas width
    /// (and the LZW stream is then cut into lines of that width), likewise the height; lines past the
    /// canvas bottom are dropped and the interlace pattern follows the *clipped* height; columns past
    /// the right edge are decoded but not drawn. FFmpeg rejects a frame whose left/top lies outside the
    /// canvas (that frame then fails to decode); here such a frame draws nothing.
    struct Geometry {
        var left: Int, top: Int
        /// Pixels per line of the LZW stream.
        var lineWidth: Int
        /// Lines drawn (at most).
        var lineCount: Int
        /// Pixels of each line that land on the canvas.
        var visibleWidth: Int
        var inside: Bool

        init(left: Int, top: Int, width: Int, height: Int, canvasWidth: Int, canvasHeight: Int) {
            self.left = left
            self.top = top
            inside = left < canvasWidth && top < canvasHeight
            lineWidth = (width == 0 || width > canvasWidth) ? canvasWidth : width
            lineCount = (height == 0 || height > canvasHeight) ? canvasHeight : height
            if top + lineCount > canvasHeight { lineCount = max(0, canvasHeight - top) }
            visibleWidth = left + lineWidth > canvasWidth ? max(0, canvasWidth - left) : lineWidth
        }
    }

    struct Image {
        var geometry: Geometry
        /// Palette indices in the order the LZW stream holds them (file order: interlaced images are not
        /// reordered), possibly fewer than `lineWidth * lineCount` when the stream ended early.
        var indices: UnsafeBufferPointer<UInt8>
        var localPalette: [UInt32]?
        var interlaced: Bool
        var transparentIndex: Int
        var disposal: Int
    }

    let width: Int
    let height: Int
    let hasGlobalPalette: Bool
    private var canvas: [UInt32]
    private var globalTable = [UInt32](repeating: 0, count: 256)
    private var localTable = [UInt32](repeating: 0, count: 256)
    private let backgroundColor: UInt32
    // State carried from the previous frame (FFmpeg's gce_prev_disposal / gce_l,t,w,h / stored_*).
    private var previousDisposal = 0
    private var previousRect = (left: 0, top: 0, width: 0, height: 0)
    private var storedColor: UInt32 = 0
    private var storedCanvas: [UInt32] = []

    init(width: Int, height: Int, globalPalette: [UInt32]?, backgroundIndex: Int) {
        self.width = width
        self.height = height
        self.canvas = [UInt32](repeating: 0, count: width * height)
        if let globalPalette {
            for (index, color) in globalPalette.enumerated() { globalTable[index] = color }
        }
        hasGlobalPalette = globalPalette != nil
        // Without a global palette FFmpeg's bg_color stays 0.
        backgroundColor = hasGlobalPalette ? globalTable[max(0, min(255, backgroundIndex))] : 0
    }

    mutating func draw(_ image: Image, isFirst: Bool) {
        let transparentIndex = (0...255).contains(image.transparentIndex) ? image.transparentIndex : -1
        let disposal = (0...3).contains(image.disposal) ? image.disposal : 0
        if let local = image.localPalette {
            for (index, color) in local.enumerated() { localTable[index] = color }
        }
        if isFirst {
            let fill = (transparentIndex == -1 && hasGlobalPalette) ? backgroundColor : Self.transparent
            for index in canvas.indices { canvas[index] = fill }
            previousDisposal = 0
        }
        let geometry = image.geometry
        let left = geometry.left, top = geometry.top
        let lineWidth = geometry.lineWidth, visibleWidth = geometry.visibleWidth
        let inside = geometry.inside

        switch previousDisposal {
        case 2: fill(previousRect, with: storedColor)
        case 3: restore(previousRect)
        default: break
        }
        previousDisposal = disposal
        if disposal != 0 {
            previousRect = inside ? (left, top, visibleWidth, geometry.lineCount) : (0, 0, 0, 0)
            if disposal == 2 {
                storedColor = transparentIndex >= 0 ? Self.transparent : backgroundColor
            } else if disposal == 3 {
                if storedCanvas.count != canvas.count { storedCanvas = [UInt32](repeating: 0, count: canvas.count) }
                copy(previousRect, from: canvas, to: &storedCanvas)
            }
        }
        // FFmpeg draws a line only once the stream has given all of it.
        let lineCount = min(geometry.lineCount, image.indices.count / max(1, lineWidth))
        guard inside, visibleWidth > 0, lineCount > 0 else { return }
        let table = image.localPalette != nil ? localTable : globalTable
        let canvasWidth = width
        // Stream line k lands on row targetRows[k] (FFmpeg's interlace stepping over the clipped height).
        let targetRows = Self.lineRows(height: geometry.lineCount, interlaced: image.interlaced)
        canvas.withUnsafeMutableBufferPointer { pixels in
            table.withUnsafeBufferPointer { colors in
                for line in 0..<lineCount {
                    let destinationRow = (top + targetRows[line]) * canvasWidth + left
                    let sourceRow = line * lineWidth
                    for column in 0..<visibleWidth {
                        let index = Int(image.indices[sourceRow + column])
                        if index != transparentIndex { pixels[destinationRow + column] = colors[index] }
                    }
                }
            }
        }
    }

    /// Canvas row (relative to the frame top) of each successive line, following FFmpeg's interlace
    /// stepping (passes start at rows 0, 4, 2, 1 with steps 8, 8, 4, 2) for the given height.
    static func lineRows(height: Int, interlaced: Bool) -> [Int] {
        guard interlaced else { return Array(0..<height) }
        var rows: [Int] = []
        rows.reserveCapacity(height)
        var row = 0, pass = 0
        for _ in 0..<height {
            rows.append(row)
            row += pass <= 1 ? 8 : (pass == 2 ? 4 : 2)
            while row >= height && pass < 4 {
                row = 4 >> pass
                pass += 1
            }
        }
        return rows
    }

    /// The canvas as packed BGR24 (alpha dropped, as swscale's RGB32 -> BGR24 does).
    func snapshotBGR() throws(FrameError) -> Frame {
        var bytes = [UInt8](repeating: 0, count: canvas.count * 3)
        bytes.withUnsafeMutableBufferPointer { output in
            canvas.withUnsafeBufferPointer { input in
                for index in 0..<input.count {
                    let value = input[index]
                    output[index * 3] = UInt8(truncatingIfNeeded: value)
                    output[index * 3 + 1] = UInt8(truncatingIfNeeded: value >> 8)
                    output[index * 3 + 2] = UInt8(truncatingIfNeeded: value >> 16)
                }
            }
        }
        return try Frame(width: width, height: height, pixels: bytes)
    }

    private mutating func fill(_ rect: (left: Int, top: Int, width: Int, height: Int), with color: UInt32) {
        for row in rect.top..<(rect.top + rect.height) {
            let start = row * width + rect.left
            for index in start..<(start + rect.width) { canvas[index] = color }
        }
    }

    private mutating func restore(_ rect: (left: Int, top: Int, width: Int, height: Int)) {
        guard storedCanvas.count == canvas.count else { return }
        copy(rect, from: storedCanvas, to: &canvas)
    }

    private func copy(_ rect: (left: Int, top: Int, width: Int, height: Int), from source: [UInt32], to destination: inout [UInt32]) {
        for row in rect.top..<(rect.top + rect.height) {
            let start = row * width + rect.left
            for index in start..<(start + rect.width) { destination[index] = source[index] }
        }
    }
}
