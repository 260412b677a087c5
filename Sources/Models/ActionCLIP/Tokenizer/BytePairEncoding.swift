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
    ///
    /// Symbols are looked up by their UTF-8 bytes in `SymbolTable` (an open-addressing hash over a byte
    /// arena) rather than as Swift `String`s: String hashing normalises Unicode and allocates, which made
    /// loading ~3x slower.
    init(fileContents bytes: [UInt8], path: String) throws(TokenizerError) {
        let (characters, order) = Self.byteCharacters()
        var table = SymbolTable(expectedCount: Self.vocabularySize)
        var baseIds = [Int32](repeating: 0, count: 256)
        let endOfWord = Array("</w>".utf8)
        for (index, byte) in order.enumerated() {
            baseIds[Int(byte)] = Int32(index)
            _ = table.append(Array(String(characters[Int(byte)]).utf8))
        }
        for byte in order {
            _ = table.append(Array(String(characters[Int(byte)]).utf8) + endOfWord)
        }

        // Pass 1: read lines 1...mergeCount (line 0 is the header; the rest of the file is unused) and give
        // each merge result the next id. The reference builds `encoder` with dict(zip(vocab, ...)), so when a
        // string occurs twice its later id wins; `SymbolTable` does the same.
        var pairs = [(left: Int32, right: Int32)]()
        pairs.reserveCapacity(Self.mergeCount)
        var hasDuplicates = false
        var lineNumber = 0
        var lineStart = 0
        let count = bytes.count
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
                guard let leftId = table.find(bytes[left]), let rightId = table.find(bytes[right]) else {
                    throw .vocabularyMalformed(path: path, reason: "merge line \(lineNumber) uses a symbol no earlier line defines")
                }
                if table.append(bytes[left], bytes[right]) { hasDuplicates = true }
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
                left = table.canonicalId(left)
                right = table.canonicalId(right)
                result = table.canonicalId(result)
            }
            // Later duplicates of a pair win, as with the reference's bpe_ranks dict.
            merges[UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))] = Merge(rank: Int32(offset), result: result)
        }
        self.baseIds = baseIds
        self.merges = merges
    }

    /// Splits a merge line on whitespace into exactly two non-empty fields (index ranges into the file).
    private static func splitPair(_ line: ArraySlice<UInt8>, lineNumber: Int, path: String) throws(TokenizerError) -> (Range<Int>, Range<Int>) {
        var fields = [Range<Int>]()
        var start: Int? = nil
        for position in line.indices {
            let byte = line[position]
            let isSpace = byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0B || byte == 0x0C
            if isSpace {
                if let begin = start { fields.append(begin..<position); start = nil }
            } else if start == nil {
                start = position
            }
        }
        if let begin = start { fields.append(begin..<line.endIndex) }
        guard fields.count == 2 else {
            throw .vocabularyMalformed(path: path, reason: "merge line \(lineNumber) has \(fields.count) fields, expected 2")
        }
        return (fields[0], fields[1])
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

/// Vocabulary strings (as UTF-8 bytes) -> id, for loading. Ids are given in append order; every symbol's
/// bytes live in one arena, and lookups use open addressing with linear probing over FNV-1a hashes.
struct SymbolTable {
    private var arena = [UInt8]()
    private var starts = [Int32]()
    private var lengths = [Int32]()
    /// Slot -> id, or -1 when empty. Kept at most half full.
    private var slots: [Int32]
    private let mask: Int

    init(expectedCount: Int) {
        var size = 1024
        while size < expectedCount * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        arena.reserveCapacity(expectedCount * 8)
        starts.reserveCapacity(expectedCount)
        lengths.reserveCapacity(expectedCount)
    }

    var count: Int { starts.count }

    @inline(__always) private static func hash(_ bytes: some Collection<UInt8>) -> Int {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: value ^ (value >> 29))
    }

    @inline(__always) private func equals(_ id: Int32, _ bytes: some Collection<UInt8>) -> Bool {
        let start = Int(starts[Int(id)])
        let length = Int(lengths[Int(id)])
        return length == bytes.count && arena[start..<(start + length)].elementsEqual(bytes)
    }

    /// Slot holding `bytes`, or the empty slot where it would go.
    @inline(__always) private func slot(of bytes: some Collection<UInt8>) -> Int {
        var slot = Self.hash(bytes) & mask
        while slots[slot] >= 0 && !equals(slots[slot], bytes) { slot = (slot + 1) & mask }
        return slot
    }

    /// The latest id whose string is `bytes`.
    func find(_ bytes: some Collection<UInt8>) -> Int32? {
        let id = slots[slot(of: bytes)]
        return id >= 0 ? id : nil
    }

    /// The latest id with the same string as `id`.
    func canonicalId(_ id: Int32) -> Int32 {
        let start = Int(starts[Int(id)])
        return find(arena[start..<(start + Int(lengths[Int(id)]))]) ?? id
    }

    /// Gives `bytes` the next id; returns true when the string already had an (older) id, which it replaces.
    mutating func append(_ bytes: [UInt8]) -> Bool {
        append(bytes[...], [])
    }

    /// Gives the concatenation `first + second` the next id, without building it as a separate array
    /// (the merge list appends 48,894 such pairs while loading); returns true when the string already
    /// had an (older) id, which it replaces.
    mutating func append(_ first: ArraySlice<UInt8>, _ second: ArraySlice<UInt8>) -> Bool {
        let id = Int32(starts.count)
        let start = arena.count
        starts.append(Int32(start))
        lengths.append(Int32(first.count + second.count))
        arena.append(contentsOf: first)
        arena.append(contentsOf: second)
        if starts.count * 2 > slots.count { grow() }
        // Looked up by its copy in the arena; the id is not in `slots` yet, so it cannot match itself.
        let target = arena.withUnsafeBufferPointer { slot(of: UnsafeBufferPointer(rebasing: $0[start...])) }
        let replaced = slots[target] >= 0
        slots[target] = id
        return replaced
    }

    private mutating func grow() {
        var bigger = SymbolTable(expectedCount: slots.count)
        bigger.arena = arena
        bigger.starts = starts
        bigger.lengths = lengths
        for slot in slots where slot >= 0 {
            let start = Int(starts[Int(slot)])
            let target = bigger.slot(of: arena[start..<(start + Int(lengths[Int(slot)]))])
            bigger.slots[target] = slot
        }
        self = bigger
    }
}
