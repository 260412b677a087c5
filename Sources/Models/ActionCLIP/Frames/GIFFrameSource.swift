import CGif
import Foundation

/// GIF decoding with giflib, composited exactly like FFmpeg's GIF decoder (libavcodec `gifdec.c`),
/// which is what `cv2.VideoCapture` (and so ailia) uses. Spec: pipeline.md §3.1.
///
/// giflib parses and LZW-decodes (`DGifSlurp`, which also de-interlaces `RasterBits`, so nothing is
/// de-interlaced here); `GIFCompositor` replays FFmpeg's canvas rules.
///
/// Memory: `DGifSlurp` keeps every frame as 8-bit palette indices (1 byte per frame pixel). Composited
/// frames are never kept: `frames(at:)` composites sequentially on one canvas and copies out only the
/// requested indices.
///
/// Truncated files: when `DGifSlurp` fails after reading at least two image descriptors, the last one
/// may be partial, so frames `0..<ImageCount-1` are kept and a warning is recorded in `warnings`.
/// (FFmpeg would also show the partial last frame; ailia never reaches it reliably either.) With fewer
/// complete frames the file is rejected.
public final class GIFFrameSource: FrameSource {
    public let path: String
    public let frameCount: Int
    public private(set) var warnings: [String] = []
    /// Canvas (logical screen) size.
    public let width: Int
    public let height: Int

    private let gif: UnsafeMutablePointer<GifFileType>

    /// Opens and parses the whole GIF. Throws `FrameError` for unreadable, oversized or frameless files.
    public init(path: String) throws {
        self.path = path
        var errorCode: Int32 = 0
        guard let gif = DGifOpenFileName(path, &errorCode) else {
            throw FrameError.notAVideo(path: path, reason: "giflib: \(GIFFrameSource.message(errorCode))")
        }
        let canvasWidth = Int(gif.pointee.SWidth)
        let canvasHeight = Int(gif.pointee.SHeight)
        do {
            // Checked before DGifSlurp, which is what allocates per-frame rasters.
            try FrameLimits.check(width: canvasWidth, height: canvasHeight, path: path)
            // giflib allocates each frame's declared size before reading its data; bound that by the data.
            try GIFPrescan.check(path: path)
        } catch {
            DGifCloseFile(gif, &errorCode)
            throw error
        }
        var usable = 0
        var warnings: [String] = []
        if DGifSlurp(gif) == GIF_OK {
            usable = Int(gif.pointee.ImageCount)
        } else {
            let code = gif.pointee.Error
            let read = Int(gif.pointee.ImageCount)
            if read >= 2 {
                usable = read - 1
                warnings.append("\(path): GIF is truncated or corrupt (giflib: \(GIFFrameSource.message(code))); "
                                + "using its \(usable) complete frames")
            } else {
                DGifCloseFile(gif, &errorCode)
                throw FrameError.decodeFailed(path: path, reason: "giflib: \(GIFFrameSource.message(code))")
            }
        }
        guard usable > 0 else {
            DGifCloseFile(gif, &errorCode)
            throw FrameError.noFrames(path: path)
        }
        self.gif = gif
        self.width = canvasWidth
        self.height = canvasHeight
        self.frameCount = usable
        self.warnings = warnings
    }

    deinit {
        var errorCode: Int32 = 0
        DGifCloseFile(gif, &errorCode)
    }

    /// Composited frames at `indices` (BGR), decoding sequentially from frame 0 up to the largest index.
    public func frames(at indices: [Int]) throws -> [Frame] {
        try validate(indices)
        guard let last = indices.max() else { return [] }
        var wanted: [Int: [Int]] = [:]  // frame index -> positions in the output
        for (position, index) in indices.enumerated() { wanted[index, default: []].append(position) }
        var output = [Frame?](repeating: nil, count: indices.count)
        var compositor = GIFCompositor(width: width, height: height, globalPalette: palette(gif.pointee.SColorMap),
                                       backgroundIndex: Int(gif.pointee.SBackGroundColor))
        for index in 0...last {
            let image = gif.pointee.SavedImages[index]
            var control = GraphicsControlBlock()
            // Returns GIF_ERROR when the frame has no GCB but still fills the defaults
            // (disposal 0, transparent -1), which is what we want.
            _ = DGifSavedExtensionToGCB(gif, Int32(index), &control)
            let descriptor = image.ImageDesc
            let local = palette(descriptor.ColorMap)
            guard local != nil || compositor.hasGlobalPalette else {
                throw FrameError.decodeFailed(path: path, reason: "frame \(index) has neither a local nor a global colour map")
            }
            guard let raster = image.RasterBits else {
                throw FrameError.decodeFailed(path: path, reason: "frame \(index) has no pixel data")
            }
            compositor.draw(GIFCompositor.Image(
                left: Int(descriptor.Left), top: Int(descriptor.Top),
                width: Int(descriptor.Width), height: Int(descriptor.Height),
                indices: UnsafeBufferPointer(start: raster, count: max(0, Int(descriptor.Width) * Int(descriptor.Height))),
                localPalette: local,
                interlaced: descriptor.Interlace,
                transparentIndex: Int(control.TransparentColor),
                disposal: Int(control.DisposalMode)), isFirst: index == 0)
            if let positions = wanted[index] {
                let frame = try compositor.snapshotBGR()
                for position in positions { output[position] = frame }
            }
        }
        return output.compactMap { $0 }
    }

    private func palette(_ map: UnsafeMutablePointer<ColorMapObject>?) -> [UInt32]? {
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

    struct Image {
        var left: Int, top: Int, width: Int, height: Int
        /// Row-major `width * height` palette indices (already de-interlaced).
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
        // FFmpeg's geometry rules: a zero or wider-than-canvas width becomes the canvas width (and the
        // LZW stream is then cut into lines of that width), likewise the height; lines past the
        // canvas edge are dropped and the interlace pattern follows the *clipped* height. FFmpeg rejects
        // a frame whose left/top lies outside the canvas (that frame then fails to decode); here such a
        // frame draws nothing.
        let left = image.left, top = image.top
        let inside = left < width && top < height
        let lineWidth = (image.width == 0 || image.width > width) ? width : image.width
        var lineCount = (image.height == 0 || image.height > height) ? height : image.height
        if top + lineCount > height { lineCount = height - top }
        let visibleWidth = left + lineWidth > width ? width - left : lineWidth

        switch previousDisposal {
        case 2: fill(previousRect, with: storedColor)
        case 3: restore(previousRect)
        default: break
        }
        previousDisposal = disposal
        if disposal != 0 {
            previousRect = inside ? (left, top, visibleWidth, lineCount) : (0, 0, 0, 0)
            if disposal == 2 {
                storedColor = transparentIndex >= 0 ? Self.transparent : backgroundColor
            } else if disposal == 3 {
                if storedCanvas.count != canvas.count { storedCanvas = [UInt32](repeating: 0, count: canvas.count) }
                copy(previousRect, from: canvas, to: &storedCanvas)
            }
        }
        guard inside, visibleWidth > 0, lineCount > 0 else { return }
        let table = image.localPalette != nil ? localTable : globalTable
        let canvasWidth = width
        let sourceWidth = image.width
        let simpleGeometry = lineWidth == image.width && (!image.interlaced || lineCount == image.height)
        // giflib stores de-interlaced rows; FFmpeg consumes the LZW stream line by line in file order.
        // Stream element k sits in giflib's raster at row order(H)[k / W], column k % W.
        let fileOrder = image.interlaced && !simpleGeometry ? Self.lineRows(height: image.height, interlaced: true) : []
        let targetRows = Self.lineRows(height: lineCount, interlaced: image.interlaced)
        canvas.withUnsafeMutableBufferPointer { pixels in
            table.withUnsafeBufferPointer { colors in
                for line in 0..<lineCount {
                    let destinationRow = (top + targetRows[line]) * canvasWidth + left
                    if simpleGeometry {
                        let sourceRow = targetRows[line] * sourceWidth
                        for column in 0..<visibleWidth {
                            let index = Int(image.indices[sourceRow + column])
                            if index != transparentIndex { pixels[destinationRow + column] = colors[index] }
                        }
                    } else {
                        // The stream ends early when the line would run past the decoded data.
                        guard (line + 1) * lineWidth <= image.indices.count else { return }
                        for column in 0..<visibleWidth {
                            let element = line * lineWidth + column
                            let streamLine = element / sourceWidth
                            let rasterRow = fileOrder.isEmpty ? streamLine : fileOrder[streamLine]
                            let index = Int(image.indices[rasterRow * sourceWidth + element % sourceWidth])
                            if index != transparentIndex { pixels[destinationRow + column] = colors[index] }
                        }
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
