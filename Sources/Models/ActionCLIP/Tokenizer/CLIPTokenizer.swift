import Foundation
import Tensor

/// CLIP's byte-level BPE tokenizer (openai/CLIP `simple_tokenizer.py`, as ailia's ActionCLIP uses it;
/// pipeline.md §6): clean-up, pre-tokenization, byte-to-unicode, BPE over the 48894 ranked merges of
/// `bpe_simple_vocab_16e6.txt.gz`, then `[SOT] + ids + [EOT]` zero-padded to the context length.
///
/// Text clean-up reproduces ftfy 6.3.1's `fix_text` except mojibake repair (see `TextCleaner`).
/// The tokenizer is immutable apart from an internal, thread-safe cache of already-encoded words.
public struct CLIPTokenizer: Sendable {
    /// Id of `<|startoftext|>`.
    public static let startOfText = 49406
    /// Id of `<|endoftext|>`.
    public static let endOfText = 49407
    /// CLIP's text context length.
    public static let defaultContextLength = 77
    /// Decompressed vocabulary files larger than this are refused (CLIP's is 3.19 MB).
    public static let maximumVocabularyBytes = 64 << 20

    private let encoding: BytePairEncoding
    private let cache: WordCache

    /// Loads the gzip-compressed merge list (`bpe_simple_vocab_16e6.txt.gz`).
    /// Throws `TokenizerError` if the file is missing, not gzip, truncated, too large, or not CLIP's merge list.
    public init(vocabularyPath: String) throws {
        let bytes = try GzipFile.read(path: vocabularyPath, maximumBytes: Self.maximumVocabularyBytes)
        encoding = try BytePairEncoding(fileContents: bytes, path: vocabularyPath)
        cache = WordCache()
    }

    /// The text after clean-up (ftfy subset, HTML unescape, whitespace collapse, lower-case): what the
    /// pre-tokenizer splits.
    public func normalize(_ text: String) -> String {
        TextCleaner.clean(text)
    }

    /// BPE ids of `text`, without start/end-of-text tokens and without padding.
    public func encode(_ text: String) -> [Int] {
        let cleaned = Array(TextCleaner.clean(text).unicodeScalars)
        var ids = [Int32]()
        ids.reserveCapacity(cleaned.count)
        for range in PreTokenizer.pieces(cleaned) {
            let piece = cleaned[range]
            if piece.elementsEqual(PreTokenizer.startOfText) {
                ids.append(Int32(Self.startOfText))
                continue
            }
            if piece.elementsEqual(PreTokenizer.endOfText) {
                ids.append(Int32(Self.endOfText))
                continue
            }
            var view = String.UnicodeScalarView()
            view.append(contentsOf: piece)
            let word = String(view)
            if let cached = cache.lookup(word) {
                ids.append(contentsOf: cached)
                continue
            }
            var wordIds = [Int32]()
            encoding.encode(utf8: word.utf8, into: &wordIds)
            cache.store(word, wordIds)
            ids.append(contentsOf: wordIds)
        }
        return ids.map { Int($0) }
    }

    /// `[SOT] + encode(text) + [EOT]`, right-padded with 0 to `contextLength`.
    /// Throws `TokenizerError.textTooLong` when that is longer than the context (CLIP does not truncate).
    public func tokenize(_ text: String, contextLength: Int = CLIPTokenizer.defaultContextLength) throws -> [Int64] {
        guard contextLength >= 2 else { throw TokenizerError.invalidContextLength(contextLength) }
        let ids = encode(text)
        let tokenCount = ids.count + 2
        guard tokenCount <= contextLength else {
            throw TokenizerError.textTooLong(text: text, tokenCount: tokenCount, contextLength: contextLength)
        }
        var row = [Int64](repeating: 0, count: contextLength)
        row[0] = Int64(Self.startOfText)
        for (offset, id) in ids.enumerated() { row[offset + 1] = Int64(id) }
        row[ids.count + 1] = Int64(Self.endOfText)
        return row
    }

    /// Tokenizes every text into one int64 tensor of shape [texts.count, 77], row i = `tokenize(texts[i])`.
    public func tokenize(_ texts: [String]) throws -> Tensor {
        let width = Self.defaultContextLength
        let tensor = try Tensor.zeros(.int64, shape: [texts.count, width])
        let output = tensor.mutableInt64s
        for (row, text) in texts.enumerated() {
            let ids = try tokenize(text, contextLength: width)
            for (column, id) in ids.enumerated() { output[row * width + column] = id }
        }
        return tensor
    }
}

/// Thread-safe memo of word -> BPE ids (the reference keeps the same cache). Bounded: it is emptied
/// when it reaches `capacity` words, so hostile input cannot grow it without limit.
final class WordCache: @unchecked Sendable {
    private let lock = NSLock()
    private var words = [String: [Int32]]()
    private let capacity = 1 << 16

    func lookup(_ word: String) -> [Int32]? {
        lock.lock()
        defer { lock.unlock() }
        return words[word]
    }

    func store(_ word: String, _ ids: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        if words.count >= capacity { words.removeAll(keepingCapacity: true) }
        words[word] = ids
    }
}
