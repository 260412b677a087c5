import ArgumentParser

@main
struct ActionCLIPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "action-clip",
        abstract: "Zero-shot video action recognition with ActionCLIP, on a pure-Swift ONNX engine."
    )
}
