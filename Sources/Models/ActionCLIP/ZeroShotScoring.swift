import Foundation
import Tensor

/// The similarity and scoring step of ailia's `action_clip.py` (pipeline.md §8).
///
/// For each video feature v and the text features u[t, c] (template t, label c, rows
/// template-major), the probability of label c is
/// `p_c = mean over t of softmax_c(100 · cos(v, u[t, c]))`.
/// The script computes in float32 with numpy; here dot products and sums run in Double and
/// are rounded to Float where numpy holds float32 values, which keeps the result within a few
/// float32 ulps of numpy's whatever order its BLAS sums in.
public enum ZeroShotScoring {
    /// CLIP's zero-shot logit scale; ailia uses the constant, not the checkpoint's learned scale.
    public static let logitScale: Float = 100

    /// Why scoring failed (feature shapes that do not match); one line.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Scores every video against every label.
    /// - Parameters:
    ///   - videoFeatures: `[videos, dimension]` float32 (the fusion graph's output).
    ///   - textFeatures: `[templates * labels, dimension]` float32, row = template * labels + label.
    /// - Returns: `[videos][labels]` probabilities; each row sums to 1.
    public static func probabilities(videoFeatures: Tensor, textFeatures: Tensor,
                                     templateCount: Int, labelCount: Int) throws(Failure) -> [[Float]] {
        guard videoFeatures.dataType == .float32, textFeatures.dataType == .float32,
              videoFeatures.rank == 2, textFeatures.rank == 2 else {
            throw Failure(description: "features must be 2-D float32, got \(videoFeatures.shape) and \(textFeatures.shape)")
        }
        let dimension = videoFeatures.shape[1]
        guard textFeatures.shape[1] == dimension else {
            throw Failure(description: "video features have width \(dimension), text features \(textFeatures.shape[1])")
        }
        guard templateCount > 0, labelCount > 0, textFeatures.shape[0] == templateCount * labelCount else {
            throw Failure(description: "expected \(templateCount) x \(labelCount) text rows, got \(textFeatures.shape[0])")
        }
        let videos = normalizedRows(videoFeatures.floats, width: dimension)
        let texts = normalizedRows(textFeatures.floats, width: dimension)
        var results: [[Float]] = []
        for video in 0..<videoFeatures.shape[0] {
            var sums = [Double](repeating: 0, count: labelCount)
            var logits = [Double](repeating: 0, count: labelCount)
            for template in 0..<templateCount {
                for label in 0..<labelCount {
                    let row = template * labelCount + label
                    var dot = 0.0
                    for index in 0..<dimension {
                        dot += Double(logitScale * videos[video * dimension + index]) * Double(texts[row * dimension + index])
                    }
                    logits[label] = Double(Float(dot))
                }
                for (label, probability) in softmax(logits).enumerated() { sums[label] += Double(probability) }
            }
            results.append(sums.map { Float($0 / Double(templateCount)) })
        }
        return results
    }

    /// Rows divided by their L2 norm, in float32 like `x / np.linalg.norm(x, axis=-1, keepdims=True)`.
    static func normalizedRows(_ values: UnsafeBufferPointer<Float>, width: Int) -> [Float] {
        var result = [Float](repeating: 0, count: values.count)
        guard width > 0 else { return result }
        for row in 0..<(values.count / width) {
            var squares = 0.0
            for index in 0..<width { squares += Double(values[row * width + index]) * Double(values[row * width + index]) }
            let norm = Float(squares.squareRoot())
            for index in 0..<width { result[row * width + index] = values[row * width + index] / norm }
        }
        return result
    }

    /// exp(x − max) / Σ exp(x − max), rounded to float32 as ailia's `math_utils.softmax` returns.
    static func softmax(_ logits: [Double]) -> [Float] {
        let maximum = logits.max() ?? 0
        let exponentials = logits.map { exp($0 - maximum) }
        let total = exponentials.reduce(0, +)
        return exponentials.map { Float($0 / total) }
    }

    /// Label indices by descending probability; ties keep the lower index first (a stable order,
    /// where numpy's quicksort `argsort` leaves ties unspecified).
    public static func ranking(_ probabilities: [Float]) -> [Int] {
        probabilities.indices.sorted { probabilities[$0] > probabilities[$1] || (probabilities[$0] == probabilities[$1] && $0 < $1) }
    }
}
