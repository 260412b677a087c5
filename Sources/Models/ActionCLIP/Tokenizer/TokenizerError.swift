/// Errors from loading the CLIP vocabulary or tokenizing text. Each prints as one line that names the
/// file or text and the problem.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The vocabulary file does not exist.
    case vocabularyNotFound(path: String)
    /// The file exists but could not be read or decompressed (truncated, not gzip, I/O error).
    case vocabularyUnreadable(path: String, reason: String)
    /// The decompressed file is not CLIP's merge list (wrong header, too few or malformed merge lines).
    case vocabularyMalformed(path: String, reason: String)
    /// `[SOT] + ids + [EOT]` is longer than the context; CLIP does not truncate.
    case textTooLong(text: String, tokenCount: Int, contextLength: Int)
    /// The context length asked for cannot hold even `[SOT, EOT]`.
    case invalidContextLength(Int)

    public var description: String {
        switch self {
        case .vocabularyNotFound(let path):
            return "BPE vocabulary \(path) not found (run Scripts/fetch-vocab.sh to download it)"
        case .vocabularyUnreadable(let path, let reason):
            return "BPE vocabulary \(path) could not be read: \(reason)"
        case .vocabularyMalformed(let path, let reason):
            return "BPE vocabulary \(path) is not CLIP's bpe_simple_vocab_16e6 merge list: \(reason)"
        case .textTooLong(let text, let tokenCount, let contextLength):
            return "Input \"\(text)\" is too long for context length \(contextLength): it is \(tokenCount) tokens "
                + "(with start/end of text), more than \(contextLength)"
        case .invalidContextLength(let length):
            return "context length \(length) is too small (it must hold at least the 2 start/end-of-text tokens)"
        }
    }
}
