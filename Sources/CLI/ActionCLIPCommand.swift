import ArgumentParser
import Foundation
import Tensor

/// Entry point. Parsing and error reporting are done here rather than by ArgumentParser's
/// default `main()` so that the exit codes follow this tool's contract: 0 success,
/// 1 bad input or failed check, 2 usage error (ArgumentParser alone would use 64).
@main
enum ActionCLIPMain {
    static func main() {
        selectFastBLASKernels()
        PeakMemoryReport.registerIfRequested()
        do {
            var command = try ActionCLIPCommand.parseAsRoot()
            try command.run()
        } catch let error as CLIError {
            FileHandle.standardError.write(Data("action-clip: error: \(error.message)\n".utf8))
            exit(1)
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            let exitCode = ActionCLIPCommand.exitCode(for: error)
            if exitCode == .validationFailure {
                FileHandle.standardError.write(Data((ActionCLIPCommand.fullMessage(for: error) + "\n").utf8))
                exit(2)
            }
            if exitCode == .success {
                ActionCLIPCommand.exit(withError: error)
            }
            // Anything else is an error from the library (loader, interpreter, decoder...): one line.
            FileHandle.standardError.write(Data("action-clip: error: \(error)\n".utf8))
            exit(1)
        }
    }
}

/// OpenBLAS 0.3.21 (Debian 12) does not recognise recent CPUs such as Intel family 6 model 207
/// and falls back to its SSE3 "Prescott" kernels, about 6x slower than its AVX-512 ones on the
/// same machine. It reads `OPENBLAS_CORETYPE` only while the library loads, before `main`, so the
/// fix is to set it and execute this program again. The variable being set prevents a loop, and
/// a user who sets it (or `ACTION_CLIP_KEEP_BLAS=1`) keeps their choice.
func selectFastBLASKernels() {
    let environment = ProcessInfo.processInfo.environment
    guard environment["OPENBLAS_CORETYPE"] == nil, environment["ACTION_CLIP_KEEP_BLAS"] == nil,
          let coreType = Threading.suggestedBLASCoreType() else { return }
    setenv("OPENBLAS_CORETYPE", coreType, 1)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    // execv only returns on failure; carry on with the slower kernels.
}

struct ActionCLIPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "action-clip",
        abstract: "Zero-shot video action recognition with ActionCLIP, on a pure-Swift ONNX engine.",
        discussion: """
        Exit codes: 0 success, 1 bad input or failed check, 2 usage error.
        Environment: ACTION_CLIP_TIMING=1 prints time per op type after each graph run;
        ACTION_CLIP_TRACE=1 prints one line per executed node; ACTION_CLIP_WEIGHT_CACHE=0 turns off \
        the aligned weight cache ($XDG_CACHE_HOME/action-clip/weights, default ~/.cache/action-clip/weights), \
        =verify compares it with the model's bytes on every load even where a stamp shows neither file \
        changed since the last comparison; \
        ACTION_CLIP_SKINNY_GEMM=0 sends the few-row products (2-12 rows, e.g. the fusion graph) to \
        OpenBLAS instead of the skinny kernel, =portable forces its plain-C version; \
        ACTION_CLIP_PAD_WEIGHTS=0 keeps MatMul weights' rows contiguous (by default rows a multiple of \
        2 KB long are stored 64 bytes apart, for the skinny kernel's cache use); \
        ACTION_CLIP_PACK_WEIGHTS=0 keeps MatMul weights row-major on CPUs with AVX-512, where by default \
        they are stored in strips of 32 columns for the packed GEMM (=1 packs them on any CPU); \
        ACTION_CLIP_AVX512=0 treats the CPU as one without AVX-512 (weights not packed unless \
        ACTION_CLIP_PACK_WEIGHTS=1, which then runs the packed GEMM's AVX2 kernel, or its plain-C one \
        with ACTION_CLIP_AVX2=0).
        """,
        subcommands: [ClassifyCommand.self, TokenizeCommand.self, PreprocessCommand.self,
                      InspectCommand.self, RunCommand.self, ValidateCommand.self, BenchCommand.self],
        defaultSubcommand: ClassifyCommand.self
    )
}

/// A user-facing failure: printed as one line on stderr, exit code 1.
struct CLIError: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// Runs a throwing library call and turns any error into a one-line `CLIError`.
func userFacing<Result>(_ body: () throws -> Result) throws -> Result {
    do { return try body() } catch let error as CLIError { throw error } catch {
        throw CLIError(String(describing: error))
    }
}

/// `userFacing` for work on one input file: the message names `path` (prefixed when the library's own
/// message does not, e.g. "graph has a cycle through node n" from the loader).
func userFacing<Result>(naming path: String, _ body: () throws -> Result) throws -> Result {
    do { return try body() } catch let error as CLIError { throw error } catch {
        let text = String(describing: error)
        throw CLIError(text.contains(path) ? text : "\(path): \(text)")
    }
}

/// `action-clip bench` runs this program as a child to time the whole job, and needs the child's
/// own peak RSS. `wait4`'s ru_maxrss cannot give it: on Linux a child's high-water mark starts at
/// its parent's RSS when it execs (the fork shares the parent's pages), so a child of a 1.2 GB
/// bench reported 1.9 GB. VmHWM in /proc/self/status counts only this program's own pages, so
/// with `ACTION_CLIP_PEAK_RSS_FILE` set the child writes it (in kB) there when it exits.
enum PeakMemoryReport {
    nonisolated(unsafe) static var path: String?

    static func registerIfRequested() {
        guard let value = ProcessInfo.processInfo.environment["ACTION_CLIP_PEAK_RSS_FILE"], !value.isEmpty else { return }
        path = value
        atexit {
            guard let path = PeakMemoryReport.path, let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return }
            let kilobytes = line.split(separator: " ").dropFirst().first.map(String.init) ?? ""
            try? (kilobytes + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        }
    }
}
