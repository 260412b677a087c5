/// CLIP's pre-tokenizer: Python `regex.findall` of
/// `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+` with
/// IGNORECASE, done by hand over Unicode scalars.
///
/// At each position the alternatives are tried in order and the first that matches wins; none of them
/// needs backtracking (the `+` runs are greedy and end the alternative). Whitespace matches nothing and
/// is skipped. `\p{L}` = Lu Ll Lt Lm Lo, `\p{N}` = Nd Nl No, `\s` = White_Space.
enum PreTokenizer {
    static let startOfText = Array("<|startoftext|>".unicodeScalars)
    static let endOfText = Array("<|endoftext|>".unicodeScalars)
    /// The contraction suffixes, in the pattern's order (`'s` before `'t` before `'re`...).
    private static let contractions: [[Unicode.Scalar]] = ["s", "t", "re", "ve", "m", "ll", "d"].map { Array($0.unicodeScalars) }

    /// Splits cleaned text into pieces (ranges into `text`).
    static func pieces(_ text: [Unicode.Scalar]) -> [Range<Int>] {
        var pieces = [Range<Int>]()
        var index = 0
        let count = text.count
        while index < count {
            let scalar = text[index]
            if scalar == "<" {
                if matches(startOfText, in: text, at: index) {
                    pieces.append(index..<(index + startOfText.count))
                    index += startOfText.count
                    continue
                }
                if matches(endOfText, in: text, at: index) {
                    pieces.append(index..<(index + endOfText.count))
                    index += endOfText.count
                    continue
                }
            }
            if scalar == "'" {
                if let suffix = contractions.first(where: { matches($0, in: text, at: index + 1) }) {
                    pieces.append(index..<(index + 1 + suffix.count))
                    index += 1 + suffix.count
                    continue
                }
            }
            switch kind(scalar) {
            case .letter:
                var end = index + 1
                while end < count && kind(text[end]) == .letter { end += 1 }
                pieces.append(index..<end)
                index = end
            case .number:
                pieces.append(index..<(index + 1))
                index += 1
            case .whitespace:
                index += 1
            case .other:
                var end = index + 1
                while end < count && kind(text[end]) == .other { end += 1 }
                pieces.append(index..<end)
                index = end
            }
        }
        return pieces
    }

    enum Kind { case letter, number, whitespace, other }

    @inline(__always) static func kind(_ scalar: Unicode.Scalar) -> Kind {
        let value = scalar.value
        if value < 0x80 {
            switch scalar {
            case "a"..."z", "A"..."Z": return .letter
            case "0"..."9": return .number
            case "\t", "\n", "\u{0B}", "\u{0C}", "\r", " ": return .whitespace
            default: return .other
            }
        }
        if TextCleaner.isRegexWhitespace(scalar) { return .whitespace }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    /// Case-insensitive match of an all-lower-case ASCII literal, as Python `regex` IGNORECASE does it
    /// (simple case folding): besides ASCII case, `ſ` (U+017F) matches `s` and the Kelvin sign `k`.
    @inline(__always) static func matches(_ literal: [Unicode.Scalar], in text: [Unicode.Scalar], at start: Int) -> Bool {
        guard start + literal.count <= text.count else { return false }
        for (offset, expected) in literal.enumerated() {
            let actual = text[start + offset]
            if actual == expected { continue }
            if ("a"..."z").contains(expected) && actual.value == expected.value - 32 { continue }
            if expected == "s" && actual.value == 0x017F { continue }
            if expected == "k" && actual.value == 0x212A { continue }
            return false
        }
        return true
    }
}
