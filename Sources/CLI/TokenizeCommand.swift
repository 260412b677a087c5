import ArgumentParser
import Foundation
import Models
import Tensor

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print CLIP's 77 token ids for each text, as the text network receives them.",
        discussion: "Ids are start-of-text 49406, the BPE ids, end-of-text 49407, then zeros. A text longer than 77 tokens is an error."
    )

    @Argument(help: "Texts to tokenize.")
    var texts: [String]

    @Option(help: "CLIP BPE vocabulary (default: $ACTION_CLIP_MODELS or ./Weights, bpe_simple_vocab_16e6.txt.gz).")
    var vocab: String?

    @Flag(help: "Print a JSON array of {text, ids} objects.")
    var json = false

    func validate() throws {
        if texts.isEmpty { throw ValidationError("give at least one text") }
    }

    func run() throws {
        var options = try ModelOptions.parse([])
        options.vocab = vocab
        let tokenizer = try options.loadTokenizer()
        var results: [JSONValue] = []
        for text in texts {
            let ids = try userFacing { try tokenizer.tokenize(text) }
            if json {
                results.append(.object([("text", .string(text)), ("ids", .array(ids.map { .int(Int($0)) }))]))
            } else {
                print(ids.map(String.init).joined(separator: " "))
            }
        }
        if json { print(JSONValue.array(results).rendered()) }
    }
}
