import Foundation

/// CLIP's text clean-up (pipeline.md §6.1-6.3): ftfy.fix_text, `html.unescape` twice, strip, whitespace
/// collapse, strip, Python `str.lower()`.
///
/// Reproduced from ftfy 6.3.1 `fix_text` (default config), checked against it with the fixture cases and
/// 9000 random strings: line-by-line segments (split after each `\n`, at most 1,000,000 code points) and
/// the fixer loop repeated until the text stops changing — `unescape_html` (ftfy's rule: HTML unescaping
/// is done for segments until the first segment that contains `<`; that segment and every later one are
/// not unescaped by ftfy, although `html.unescape` still runs twice afterwards), `fix_c1_controls`,
/// `fix_latin_ligatures`, `fix_character_width` (ftfy's table: NFKC of U+FF01-U+FFEF, U+3000 -> space),
/// `uncurl_quotes`, `fix_line_breaks`, `remove_terminal_escapes`, `remove_control_chars`, then NFC.
/// The named-entity tables are complete (all 2231 names of Python 3.11's `html.entities.html5` plus ftfy's
/// upper-case variants such as `&EACUTE;`); numeric references follow Python's `html.unescape` rules.
///
/// Not reproduced: mojibake repair (ftfy's heuristic `fix_encoding`: re-decoding text that was decoded
/// with the wrong codec, e.g. `cafÃ©` -> `café`, plus its sub-steps `restore_byte_a0`,
/// `replace_lossy_sequences`, `decode_inconsistent_utf8`). The result therefore equals
/// `ftfy.fix_text(text, fix_encoding=False)`. `fix_surrogates` has nothing to do on Swift strings.
/// Character properties (letters, numbers, case mappings, NFC) come from Swift's Unicode tables, which
/// match Python 3.11 / `regex` for every code point assigned up to Unicode 15; they can differ only for
/// characters added in Unicode 16-17.
///
/// All text is processed as arrays of Unicode scalars, which are Python's code points.
enum TextCleaner {
    /// The full clean-up; the result is what the pre-tokenizer sees.
    static func clean(_ text: String) -> String {
        var scalars = Array(text.unicodeScalars)
        scalars = fixText(scalars)
        scalars = htmlUnescape(htmlUnescape(scalars))
        scalars = strip(scalars)
        scalars = collapseWhitespace(scalars)
        scalars = strip(scalars)
        scalars = lowercased(scalars)
        var result = String.UnicodeScalarView()
        result.append(contentsOf: scalars)
        return String(result)
    }

    // MARK: ftfy.fix_text

    /// ftfy's `max_decode_length`: a line longer than this is fixed in pieces of this many code points.
    static let maximumSegmentLength = 1_000_000

    /// `ftfy.fix_text` without mojibake repair. ftfy fixes the text line by line (each segment ends after a
    /// `\n`). HTML unescaping is on for a segment until the first segment containing `<`; from that segment
    /// on it stays off for the rest of the text (ftfy replaces its config for all later segments).
    static func fixText(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var output = [Unicode.Scalar]()
        output.reserveCapacity(text.count)
        var unescape = true
        var position = 0
        while position < text.count {
            var lineEnd = position
            while lineEnd < text.count && text[lineEnd] != "\n" { lineEnd += 1 }
            var segmentEnd = min(lineEnd + 1, text.count)
            if segmentEnd - position > maximumSegmentLength { segmentEnd = position + maximumSegmentLength }
            let segment = Array(text[position..<segmentEnd])
            if unescape && segment.contains("<") { unescape = false }
            output.append(contentsOf: fixSegment(segment, unescapeHTML: unescape))
            position = segmentEnd
        }
        return output
    }

    /// ftfy's `fix_and_explain` loop: apply every fixer in ftfy's order, then NFC, until nothing changes.
    static func fixSegment(_ segment: [Unicode.Scalar], unescapeHTML: Bool) -> [Unicode.Scalar] {
        var text = segment
        // Each round only shrinks or simplifies the text, so it settles in a few rounds; the cap only guards
        // against a table error turning this into an endless loop.
        for _ in 0..<64 {
            let original = text
            if unescapeHTML { text = ftfyUnescapeHTML(text) }
            text = mapCharacters(text)
            text = fixLineBreaks(text)
            text = removeTerminalEscapes(text)
            text = removeControlCharacters(text)
            text = nfc(text)
            if text == original { break }
        }
        return text
    }

    /// ftfy's per-character fixers in its order: `fix_c1_controls` (U+0080-U+009F decoded as
    /// windows-1252, undefined bytes kept), `fix_latin_ligatures`, `fix_character_width`, `uncurl_quotes`.
    /// Each is a one-character-to-string map, so applying them in turn to each character equals ftfy's
    /// whole-string passes.
    static func mapCharacters(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains(where: { $0.value >= 0x80 }) else { return text }
        var output = [Unicode.Scalar]()
        output.reserveCapacity(text.count)
        for scalar in text {
            for character in ligature(windows1252(scalar)) {
                for narrow in width(character) { output.append(uncurl(narrow)) }
            }
        }
        return output
    }

    private static let windows1252High: [UInt32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
        0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ]

    @inline(__always) static func windows1252(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        guard (0x80...0x9F).contains(scalar.value) else { return scalar }
        return Unicode.Scalar(windows1252High[Int(scalar.value - 0x80)]) ?? scalar
    }

    private static let ligatures: [UInt32: [Unicode.Scalar]] = [
        0x0132: ["I", "J"], 0x0133: ["i", "j"], 0x0149: ["\u{02BC}", "n"],
        0x01F1: ["D", "Z"], 0x01F2: ["D", "z"], 0x01F3: ["d", "z"],
        0x01C4: ["D", "\u{017D}"], 0x01C5: ["D", "\u{017E}"], 0x01C6: ["d", "\u{017E}"],
        0x01C7: ["L", "J"], 0x01C8: ["L", "j"], 0x01C9: ["l", "j"],
        0x01CA: ["N", "J"], 0x01CB: ["N", "j"], 0x01CC: ["n", "j"],
        0xFB00: ["f", "f"], 0xFB01: ["f", "i"], 0xFB02: ["f", "l"], 0xFB03: ["f", "f", "i"],
        0xFB04: ["f", "f", "l"], 0xFB05: ["\u{017F}", "t"], 0xFB06: ["s", "t"],
    ]

    @inline(__always) static func ligature(_ scalar: Unicode.Scalar) -> [Unicode.Scalar] {
        guard (0x0132...0xFB06).contains(scalar.value), let replacement = ligatures[scalar.value] else { return [scalar] }
        return replacement
    }

    @inline(__always) static func width(_ scalar: Unicode.Scalar) -> [Unicode.Scalar] {
        guard scalar.value == 0x3000 || (0xFF01...0xFFEF).contains(scalar.value),
              let replacement = TextTables.shared.width[scalar.value]
        else { return [scalar] }
        return replacement
    }

    @inline(__always) static func uncurl(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        switch scalar.value {
        case 0x02BC, 0x2018...0x201B: return "'"
        case 0x201C...0x201F: return "\""
        default: return scalar
        }
    }

    /// ftfy's `fix_line_breaks`: CRLF, CR, U+2028, U+2029, U+0085 -> LF.
    static func fixLineBreaks(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains(where: { $0 == "\r" || $0.value == 0x2028 || $0.value == 0x2029 || $0.value == 0x85 }) else {
            return text
        }
        var output = [Unicode.Scalar]()
        output.reserveCapacity(text.count)
        var index = 0
        while index < text.count {
            let scalar = text[index]
            switch scalar.value {
            case 0x0D:
                output.append("\n")
                if index + 1 < text.count && text[index + 1] == "\n" { index += 1 }
            case 0x2028, 0x2029, 0x85:
                output.append("\n")
            default:
                output.append(scalar)
            }
            index += 1
        }
        return output
    }

    /// ftfy's `remove_terminal_escapes`: `ESC [ (\d|;)* [a-zA-Z]`, where Python's `\d` is any Nd digit.
    static func removeTerminalEscapes(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("\u{1B}") else { return text }
        var output = [Unicode.Scalar]()
        output.reserveCapacity(text.count)
        var index = 0
        while index < text.count {
            if text[index] == "\u{1B}" && index + 1 < text.count && text[index + 1] == "[" {
                var end = index + 2
                while end < text.count && (text[end] == ";" || text[end].properties.generalCategory == .decimalNumber) {
                    end += 1
                }
                if end < text.count && isASCIILetter(text[end]) {
                    index = end + 1
                    continue
                }
            }
            output.append(text[index])
            index += 1
        }
        return output
    }

    /// ftfy's `remove_control_chars`: C0 controls except TAB LF FF CR, DEL, U+206A-U+206F (deprecated
    /// format characters), U+FEFF (BOM), U+FFF9-U+FFFC (interlinear annotation, object replacement).
    @inline(__always) static func isRemovedControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x206A...0x206F, 0xFEFF, 0xFFF9...0xFFFC: return true
        default: return false
        }
    }

    static func removeControlCharacters(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains(where: isRemovedControl) else { return text }
        return text.filter { !isRemovedControl($0) }
    }

    /// Unicode NFC. Text made only of code points below U+0300 is already NFC (all have NFC_QC=Yes and
    /// combining class 0), which skips Foundation for plain prompts.
    static func nfc(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains(where: { $0.value >= 0x300 }) else { return text }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: text)
        return Array(String(view).precomposedStringWithCanonicalMapping.unicodeScalars)
    }

    /// ftfy's `unescape_html`: each `&#?[0-9A-Za-z]{1,24};` that is a known entity (html5 names ending in
    /// `;`, plus ftfy's upper-case variants) is replaced; a numeric one is replaced by what `html.unescape`
    /// makes of it unless that result still contains `;` (i.e. it was not a complete reference).
    static func ftfyUnescapeHTML(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("&") else { return text }
        let tables = TextTables.shared
        var output = [Unicode.Scalar]()
        output.reserveCapacity(text.count)
        var index = 0
        while index < text.count {
            guard text[index] == "&" else {
                output.append(text[index])
                index += 1
                continue
            }
            let hasHash = index + 1 < text.count && text[index + 1] == "#"
            let nameStart = index + (hasHash ? 2 : 1)
            var nameEnd = nameStart
            while nameEnd < text.count && isASCIIAlphanumeric(text[nameEnd]) { nameEnd += 1 }
            let length = nameEnd - nameStart
            guard (1...24).contains(length), nameEnd < text.count, text[nameEnd] == ";" else {
                output.append("&")
                index += 1
                continue
            }
            let match = Array(text[index...nameEnd])
            let key = String(String.UnicodeScalarView(match))
            if let replacement = tables.ftfyEntities[key] {
                output.append(contentsOf: replacement)
            } else if hasHash {
                let unescaped = htmlUnescape(match)
                output.append(contentsOf: unescaped.contains(";") ? match : unescaped)
            } else {
                output.append(contentsOf: match)
            }
            index = nameEnd + 1
        }
        return output
    }

    // MARK: Python html.unescape

    /// Python 3.11 `html.unescape`: numeric references with HTML5's fix-ups (invalid values become U+FFFD,
    /// C1 values become their windows-1252 character, some control and non-character values vanish) and
    /// the html5 named references, including the longest-prefix rule for names without `;`.
    static func htmlUnescape(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("&") else { return text }
        let tables = TextTables.shared
        var output = [Unicode.Scalar]()
        output.reserveCapacity(text.count)
        var index = 0
        while index < text.count {
            guard text[index] == "&", index + 1 < text.count else {
                output.append(text[index])
                index += 1
                continue
            }
            if text[index + 1] == "#" {
                // `#[0-9]+;?` then `#[xX][0-9a-fA-F]+;?`.
                var digitsEnd = index + 2
                var value = 0
                while digitsEnd < text.count, let digit = asciiDigitValue(text[digitsEnd], radix: 10) {
                    value = min(value * 10 + digit, 0x7FFF_FFFF)
                    digitsEnd += 1
                }
                if digitsEnd == index + 2, index + 2 < text.count, text[index + 2] == "x" || text[index + 2] == "X" {
                    digitsEnd = index + 3
                    while digitsEnd < text.count, let digit = asciiDigitValue(text[digitsEnd], radix: 16) {
                        value = min(value * 16 + digit, 0x7FFF_FFFF)
                        digitsEnd += 1
                    }
                    if digitsEnd == index + 3 { digitsEnd = index + 2 }
                }
                guard digitsEnd > index + 2 else {
                    output.append("&")
                    index += 1
                    continue
                }
                if digitsEnd < text.count && text[digitsEnd] == ";" { digitsEnd += 1 }
                output.append(contentsOf: numericReference(value))
                index = digitsEnd
                continue
            }
            // `[^\t\n\f <&#;]{1,32};?`
            var nameEnd = index + 1
            while nameEnd < text.count && nameEnd - index - 1 < 32 && !endsEntityName(text[nameEnd]) { nameEnd += 1 }
            guard nameEnd > index + 1 else {
                output.append("&")
                index += 1
                continue
            }
            if nameEnd < text.count && text[nameEnd] == ";" { nameEnd += 1 }
            let name = Array(text[(index + 1)..<nameEnd])
            output.append(contentsOf: namedReference(name, tables: tables))
            index = nameEnd
        }
        return output
    }

    @inline(__always) private static func endsEntityName(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "\t", "\n", "\u{0C}", " ", "<", "&", "#", ";": return true
        default: return false
        }
    }

    private static let invalidCodePoints: Set<Int> = {
        var values = Set<Int>([0x0B, 0xFFFE, 0xFFFF])
        values.formUnion(0x01...0x08)
        values.formUnion(0x0E...0x1F)
        values.formUnion(0x7F...0x9F)
        values.formUnion(0xFDD0...0xFDEF)
        for plane in 1...16 { values.insert(plane << 16 | 0xFFFE); values.insert(plane << 16 | 0xFFFF) }
        return values
    }()

    /// Python's `_replace_charref` for a number: `_invalid_charrefs`, then surrogates / > U+10FFFF -> U+FFFD,
    /// then `_invalid_codepoints` -> nothing. (Python raises on numbers of more than 4300 digits; such
    /// values saturate here and become U+FFFD.)
    static func numericReference(_ value: Int) -> [Unicode.Scalar] {
        if value == 0 { return ["\u{FFFD}"] }
        if value == 0x0D { return ["\r"] }
        if (0x80...0x9F).contains(value), let scalar = Unicode.Scalar(windows1252High[value - 0x80]) { return [scalar] }
        if (0xD800...0xDFFF).contains(value) || value > 0x10FFFF { return ["\u{FFFD}"] }
        if invalidCodePoints.contains(value) { return [] }
        guard let scalar = Unicode.Scalar(UInt32(value)) else { return ["\u{FFFD}"] }
        return [scalar]
    }

    /// Python's `_replace_charref` for a name (which may end in `;`): exact html5 name, else the longest
    /// html5 name that is a prefix of at least 2 characters (the rest kept), else the text unchanged.
    static func namedReference(_ name: [Unicode.Scalar], tables: TextTables) -> [Unicode.Scalar] {
        let entities = tables.html5Entities
        if let value = entities[String(String.UnicodeScalarView(name))] { return value }
        var length = name.count - 1
        while length >= 2 {
            if let value = entities[String(String.UnicodeScalarView(name[0..<length]))] {
                return value + name[length...]
            }
            length -= 1
        }
        return ["&"] + name
    }

    // MARK: whitespace and case

    /// Python-`regex` `\s` for str patterns: the Unicode White_Space property.
    @inline(__always) static func isRegexWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// Python `str.isspace()` (used by `str.strip()`): White_Space plus U+001C-U+001F.
    @inline(__always) static func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
        isRegexWhitespace(scalar) || (0x1C...0x1F).contains(scalar.value)
    }

    static func strip(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard let first = text.firstIndex(where: { !isPythonSpace($0) }),
              let last = text.lastIndex(where: { !isPythonSpace($0) })
        else { return [] }
        if first == 0 && last == text.count - 1 { return text }
        return Array(text[first...last])
    }

    /// `regex.sub(r"\s+", " ", text)`.
    static func collapseWhitespace(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var output = [Unicode.Scalar]()
        output.reserveCapacity(text.count)
        var inRun = false
        for scalar in text {
            if isRegexWhitespace(scalar) {
                if !inRun { output.append(" ") }
                inRun = true
            } else {
                output.append(scalar)
                inRun = false
            }
        }
        return output
    }

    /// Python `str.lower()`: the full lower-case mapping of each code point (SpecialCasing's unconditional
    /// entries, so `İ` -> `i` + U+0307), and capital sigma -> final `ς` when it ends a word:
    /// preceded by a cased letter (skipping case-ignorable ones) and not followed by one.
    /// Swift's `String.lowercased()` has no final-sigma rule, hence this function.
    static func lowercased(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var output = [Unicode.Scalar]()
        output.reserveCapacity(text.count)
        for (index, scalar) in text.enumerated() {
            if scalar.value < 0x80 {
                output.append(("A"..."Z").contains(scalar) ? Unicode.Scalar(UInt8(scalar.value + 32)) : scalar)
            } else if scalar.value == 0x03A3 {
                output.append(isFinalSigma(text, at: index) ? "\u{03C2}" : "\u{03C3}")
            } else {
                output.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return output
    }

    /// CPython's `handle_capital_sigma`: `\p{cased} \p{case-ignorable}* Σ !(\p{case-ignorable}* \p{cased})`.
    static func isFinalSigma(_ text: [Unicode.Scalar], at index: Int) -> Bool {
        var before = index - 1
        while before >= 0 && text[before].properties.isCaseIgnorable { before -= 1 }
        guard before >= 0 && text[before].properties.isCased else { return false }
        var after = index + 1
        while after < text.count && text[after].properties.isCaseIgnorable { after += 1 }
        return after == text.count || !text[after].properties.isCased
    }

    // MARK: ASCII helpers

    @inline(__always) static func isASCIILetter(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
    }

    @inline(__always) static func isASCIIAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        isASCIILetter(scalar) || ("0"..."9").contains(scalar)
    }

    @inline(__always) static func asciiDigitValue(_ scalar: Unicode.Scalar, radix: Int) -> Int? {
        switch scalar {
        case "0"..."9": return Int(scalar.value - 0x30)
        case "a"..."f" where radix == 16: return Int(scalar.value - 0x61 + 10)
        case "A"..."F" where radix == 16: return Int(scalar.value - 0x41 + 10)
        default: return nil
        }
    }
}

/// The parsed data tables of `TextCleanupTables` (built once, on first use).
final class TextTables: Sendable {
    static let shared = TextTables()

    /// Python's html5 names (as matched after `&`, some with `;`) -> replacement.
    let html5Entities: [String: [Unicode.Scalar]]
    /// ftfy's `HTML_ENTITIES`: `&name;` -> replacement.
    let ftfyEntities: [String: [Unicode.Scalar]]
    /// ftfy's `WIDTH_MAP`.
    let width: [UInt32: [Unicode.Scalar]]

    private init() {
        let html5 = Self.parse(TextCleanupTables.html5Entities)
        var html5Entities = [String: [Unicode.Scalar]](minimumCapacity: html5.count)
        var ftfyEntities = [String: [Unicode.Scalar]](minimumCapacity: html5.count * 2)
        for (name, value) in html5 {
            html5Entities[name] = value
            if name.hasSuffix(";") { ftfyEntities["&" + name] = value }
        }
        for (name, value) in Self.parse(TextCleanupTables.ftfyUpperCaseEntities) { ftfyEntities[name] = value }
        var width = [UInt32: [Unicode.Scalar]]()
        for (code, value) in Self.parse(TextCleanupTables.widthMap) {
            if let number = UInt32(code, radix: 16) { width[number] = value }
        }
        self.html5Entities = html5Entities
        self.ftfyEntities = ftfyEntities
        self.width = width
    }

    /// Lines of `key HEX HEX...`.
    private static func parse(_ table: String) -> [(String, [Unicode.Scalar])] {
        var entries = [(String, [Unicode.Scalar])]()
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let key = fields.first else { continue }
            let scalars = fields.dropFirst().compactMap { UInt32($0, radix: 16).flatMap(Unicode.Scalar.init) }
            entries.append((String(key), scalars))
        }
        return entries
    }
}
