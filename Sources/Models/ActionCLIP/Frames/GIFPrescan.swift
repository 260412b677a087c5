import Foundation

/// A pass over a GIF's block structure (no LZW decoding) run before giflib's `DGifSlurp`, which allocates
/// `Width * Height` bytes for every image descriptor it meets whatever the file really contains: a 40-byte
/// file declaring a 65535x65535 frame would make it reserve 4 GiB. The pass bounds what decoding may
/// allocate by what the file holds:
///
/// - a frame's raster (`Width * Height` palette indices) may be at most `maximumExpansion` times its LZW
///   data bytes (+1): GIF LZW codes are at least 2 bits wide and each emits at most 4096 pixels (the
///   dictionary size), so no valid stream expands more than 4 * 4096 = 16384-fold;
/// - all rasters together (what `DGifSlurp` keeps) at most `maximumTotalRasterBytes`;
/// - the canvas (which `GIFCompositor` allocates at 4 + 4 + 3 bytes per pixel) at most
///   `maximumCanvasPixelsWithoutData` pixels unless some frame's raster is at least as large, so a large
///   canvas needs image data that covers it.
///
/// Truncation is not an error here: a block cut off by the end of the file ends the pass (a frame cut off
/// may be up to the canvas size), and giflib then reports it as it always did.
enum GIFPrescan {
    static let maximumExpansion = 16384
    static let maximumTotalRasterBytes = 1 << 31
    static let maximumCanvasPixelsWithoutData = 1 << 22

    /// Throws `FrameError.tooLarge` / `.decodeFailed` when decoding `bytes` would allocate beyond the bounds.
    static func check(_ bytes: UnsafeRawBufferPointer, path: String) throws(FrameError) {
        guard bytes.count >= 13 else { return }  // giflib reports the short header itself
        func word(_ offset: Int) -> Int { Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 }
        let canvasWidth = word(6), canvasHeight = word(8)
        var position = 13
        if bytes[10] & 0x80 != 0 { position += 3 << (Int(bytes[10] & 7) + 1) }
        var frame = 0
        var totalRaster = 0
        var largestRaster = 0
        /// Skips data sub-blocks from `position`; returns the payload bytes present and whether the
        /// terminator was reached (false: the file ends inside the blocks).
        func skipSubBlocks() -> (payload: Int, complete: Bool) {
            var payload = 0
            while position < bytes.count {
                let size = Int(bytes[position])
                position += 1
                if size == 0 { return (payload, true) }
                payload += min(size, max(0, bytes.count - position))
                position += size
            }
            return (payload, false)
        }
        scan: while position < bytes.count {
            let introducer = bytes[position]
            position += 1
            switch introducer {
            case 0x21:  // extension: label, then sub-blocks
                position += 1
                guard skipSubBlocks().complete else { break scan }
            case 0x2C:  // image descriptor: left, top, width, height, flags; optional local table; LZW code size
                guard position + 9 <= bytes.count else { break scan }
                let width = word(position + 4), height = word(position + 6)
                let flags = bytes[position + 8]
                position += 9
                if flags & 0x80 != 0 { position += 3 << (Int(flags & 7) + 1) }
                position += 1
                let blocks = position < bytes.count ? skipSubBlocks() : (payload: 0, complete: false)
                let data = blocks.payload
                let raster = width * height
                // A frame cut off by the end of the file (a partial download) may be up to the canvas
                // size (itself capped here), so that salvaging the complete frames before it still works.
                let truncationAllowance = blocks.complete ? 0 : min(canvasWidth * canvasHeight, maximumCanvasPixelsWithoutData)
                guard raster <= max(maximumExpansion * (data + 1), truncationAllowance) else {
                    throw .decodeFailed(path: path, reason: "frame \(frame) declares \(width)x\(height) pixels "
                                        + "but holds only \(data) bytes of image data")
                }
                totalRaster += raster
                guard totalRaster <= maximumTotalRasterBytes else {
                    throw .decodeFailed(path: path, reason: "its frames decode to more than \(maximumTotalRasterBytes >> 20) MiB "
                                        + "(limit reached at frame \(frame))")
                }
                largestRaster = max(largestRaster, raster)
                frame += 1
                if !blocks.complete { break scan }
            default:  // trailer (0x3B) or a byte giflib will reject
                break scan
            }
        }
        let canvas = canvasWidth * canvasHeight
        guard canvas <= max(maximumCanvasPixelsWithoutData, largestRaster) else {
            throw .tooLarge(path: path, width: canvasWidth, height: canvasHeight,
                            limit: "a canvas above \(maximumCanvasPixelsWithoutData) pixels needs a frame that covers it")
        }
    }

    /// Maps `path` and runs `check`; an unreadable file is left to giflib to report.
    static func check(path: String) throws(FrameError) {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { return }
        var failure: FrameError?
        data.withUnsafeBytes { raw in
            do throws(FrameError) { try check(raw, path: path) } catch { failure = error }
        }
        if let failure { throw failure }
    }
}
