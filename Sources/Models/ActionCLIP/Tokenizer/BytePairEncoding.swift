import Foundation

/// CLIP's byte-level BPE tables (pipeline.md §6.5-6.7) and the merge loop.
///
/// Symbols are handled as vocabulary ids instead of strings: every symbol that can appear in a word is a
/// byte character, a byte character + `</w>`, or the result of an earlier merge, and each of those has exactly
/// one id, so comparing ids is comparing the strings the reference implementation compares.
struct BytePairEncoding: Sendable {
    /// Merges used: lines 1...48894 of the file (49152 - 256 - 2).
    static let mergeCount = 48_894
    static let expectedHeader = "\"bpe_simple_vocab_16e6.txt#version: 0.2"
    static let vocabularySize = 512 + mergeCount + 2

    /// `baseIds[byte]` is the id of the byte's character; + 256 gives the same character with `</w>`.
    let baseIds: [Int32]
    /// Key `left << 32 | right` -> (merge rank, id of the merged symbol).
    let merges: [UInt64: Merge]

    struct Merge: Sendable {
        let rank: Int32
        let result: Int32
    }

    /// Bytes 33-126, 161-172, 174-255 keep their code point; the other 68, ascending, become U+0100 + k.
    static func byteCharacters() -> (characters: [Character], vocabularyOrder: [UInt8]) {
        var characters = [Character](repeating: " ", count: 256)
        var printable = [UInt8]()
        var remapped = [UInt8]()
        for byte in 0...255 {
            if (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte) {
                printable.append(UInt8(byte))
            } else {
                remapped.append(UInt8(byte))
            }
        }
        for byte in printable {
            characters[Int(byte)] = Character(Unicode.Scalar(byte))
        }
        for (k, byte) in remapped.enumerated() {
            // 0x100 + k for k < 68 is always a valid scalar.
            characters[Int(byte)] = Character(Unicode.Scalar(UInt32(0x100 + k)).unsafelyUnwrapped)
        }
        return (characters, printable + remapped)
    }

    /// Parses the decompressed merge list. `path` is only used in error messages.
    init(fileContents bytes: [UInt8], path: String) throws(TokenizerError) {
        let (characters, order) = Self.byteCharacters()
        var symbolIds = [String: Int32](minimumCapacity: Self.vocabularySize)
        var baseIds = [Int32](repeating: 0, count: 256)
        for (index, byte) in order.enumerated() {
            baseIds[Int(byte)] = Int32(index)
            symbolIds[String(characters[Int(byte)])] = Int32(index)
            symbolIds[String(characters[Int(byte)]) + "</w>"] = Int32(index + 256)
        }

        // Pass 1: the symbol table. `names[id]` is the string of every id; `symbolIds` maps a string to its
        // last id (the reference builds `encoder` with dict(zip(vocab, ...)), so later duplicates win).
        var names = [String](repeating: "", count: 512)
        for (string, id) in symbolIds { names[Int(id)] = string }
        names.reserveCapacity(512 + Self.mergeCount)
        var pairs = [(left: Int32, right: Int32)]()
        pairs.reserveCapacity(Self.mergeCount)
        var hasDuplicates = false
        var lineNumber = 0
        var lineStart = 0
        let count = bytes.count
        // Line 0 is the header, lines 1...mergeCount the merges; the rest of the file is unused.
        while lineNumber <= Self.mergeCount {
            guard lineStart < count else {
                throw .vocabularyMalformed(
                    path: path, reason: "it has only \(max(lineNumber - 1, 0)) merge lines, expected at least \(Self.mergeCount)")
            }
            var index = lineStart
            while index < count && bytes[index] != 0x0A { index += 1 }
            let line = bytes[lineStart..<index]
            if lineNumber == 0 {
                guard String(decoding: line, as: UTF8.self) == Self.expectedHeader else {
                    let shown = String(decoding: line.prefix(60), as: UTF8.self)
                    throw .vocabularyMalformed(path: path, reason: "first line is \"\(shown)\", expected \"\(Self.expectedHeader)\"")
                }
            } else {
                let (left, right) = try Self.splitPair(line, lineNumber: lineNumber, path: path)
                guard let leftId = symbolIds[left], let rightId = symbolIds[right] else {
                    throw .vocabularyMalformed(path: path, reason: "merge line \(lineNumber) uses a symbol no earlier line defines")
                }
                let joined = left + right
                if symbolIds.updateValue(Int32(511 + lineNumber), forKey: joined) != nil { hasDuplicates = true }
                names.append(joined)
                pairs.append((leftId, rightId))
            }
            lineNumber += 1
            lineStart = index + 1
        }

        // Pass 2: key merges by the final id of each string. Without duplicate strings (CLIP's file has none)
        // every id is already final and a merge's result is simply its own line's id.
        var merges = [UInt64: Merge](minimumCapacity: Self.mergeCount)
        for (offset, pair) in pairs.enumerated() {
            var left = pair.left, right = pair.right, result = Int32(512 + offset)
            if hasDuplicates {
                left = symbolIds[names[Int(left)]] ?? left
                right = symbolIds[names[Int(right)]] ?? right
                result = symbolIds[names[Int(result)]] ?? result
            }
            // Later duplicates of a pair win, as with the reference's bpe_ranks dict.
            merges[UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))] = Merge(rank: Int32(offset), result: result)
        }
        self.baseIds = baseIds
        self.merges = merges
    }

    /// Splits a merge line on whitespace into exactly two non-empty symbols.
    private static func splitPair(_ line: ArraySlice<UInt8>, lineNumber: Int, path: String) throws(TokenizerError) -> (String, String) {
        var parts = [String]()
        var start: Int? = nil
        for position in line.indices {
            let byte = line[position]
            let isSpace = byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0B || byte == 0x0C
            if isSpace {
                if let begin = start { parts.append(String(decoding: line[begin..<position], as: UTF8.self)); start = nil }
            } else if start == nil {
                start = position
            }
        }
        if let begin = start { parts.append(String(decoding: line[begin..<line.endIndex], as: UTF8.self)) }
        guard parts.count == 2 else {
            throw .vocabularyMalformed(path: path, reason: "merge line \(lineNumber) has \(parts.count) fields, expected 2")
        }
        return (parts[0], parts[1])
    }

    /// BPE over one pre-token's UTF-8 bytes (§6.7): start from byte symbols with `</w>` on the last, then
    /// repeatedly merge every non-overlapping occurrence (left to right) of the lowest-ranked adjacent pair.
    func encode(utf8 bytes: some Collection<UInt8>, into output: inout [Int32]) {
        var word = [Int32]()
        word.reserveCapacity(bytes.count)
        for byte in bytes { word.append(baseIds[Int(byte)]) }
        guard let last = word.last else { return }
        word[word.count - 1] = last + 256
        var merged = [Int32]()
        merged.reserveCapacity(word.count)
        while word.count > 1 {
            var bestRank = Int32.max
            var best: Merge? = nil
            var bestKey: UInt64 = 0
            for position in 0..<(word.count - 1) {
                let key = UInt64(UInt32(word[position])) << 32 | UInt64(UInt32(word[position + 1]))
                if let merge = merges[key], merge.rank < bestRank {
                    bestRank = merge.rank
                    best = merge
                    bestKey = key
                }
            }
            guard let chosen = best else { break }
            let first = Int32(truncatingIfNeeded: bestKey >> 32)
            let second = Int32(truncatingIfNeeded: bestKey & 0xFFFF_FFFF)
            merged.removeAll(keepingCapacity: true)
            var position = 0
            while position < word.count {
                if position + 1 < word.count && word[position] == first && word[position + 1] == second {
                    merged.append(chosen.result)
                    position += 2
                } else {
                    merged.append(word[position])
                    position += 1
                }
            }
            swap(&word, &merged)
        }
        output.append(contentsOf: word)
    }
}
