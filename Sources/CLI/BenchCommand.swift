import ArgumentParser
import Foundation
import Models
import ONNXLoader
import Tensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `action-clip bench`: times each network and the whole default job, optionally against ONNX
/// Runtime, per op type, and per kernel.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the three networks and the whole default job.",
        discussion: """
        Rows: image (8 frames), fusion (1 video), text with the 160 default prompt rows at their \
        true length and, for reference, at the full 77 tokens, then the whole default job (one clip, \
        the 10 default labels) with the text-feature cache off and warm (a temporary cache \
        directory). Each row runs --warmup times untimed, then --runs times; median and minimum \
        wall time are shown, GFLOP/s against the FLOP floor (image 70.5 GFLOP per 8 frames, text \
        5.96 GFLOP per 77-token row, counted for the tokens actually run on the true-length row, \
        fusion 0.30 GFLOP per video; shown only for models of that size, feature width 512) and the process's peak RSS so far (getrusage ru_maxrss; for the process rows, the child's own VmHWM).

        Threads: --threads N (default: all cores) is the engine's one thread limit: large GEMMs are \
        split into N single-threaded OpenBLAS calls, and the engine's own loops (softmax, LayerNorm, \
        elementwise, the skinny-M kernel's pool) use N threads; OpenBLAS never threads by itself. \
        --compare-ort gives ONNX Runtime the same count (intra-op threads).

        --compare-ort runs Reference/bench_ort.py with the project venv (.venv/bin/python, or \
        $ACTION_CLIP_PYTHON) on the same model files and the same inputs, in a child process that \
        runs one graph per request: each of our runs of a graph is followed by one of ONNX Runtime's, \
        so both see the same machine, and ours/ORT is the ratio of the two medians; "paired" is the \
        median of the per-sample ratios (each of our runs over the ONNX Runtime run right after it), \
        which a drift of the machine's speed during the row moves less; "faster" counts the pairs \
        in which our run took less time than ONNX Runtime's. Each fusion sample \
        is 10 runs back to back on both engines. The text rows \
        share one set of ONNX Runtime runs (the full 77-token graph, alternated with the true-length \
        row).
        """
    )

    @OptionGroup var models: ModelOptions

    @Option(help: "Timed runs per row.")
    var runs = 5

    @Option(help: "Untimed runs before timing each row.")
    var warmup = 1

    @Option(help: ArgumentHelp("Clip for the whole-job rows (default: the sample GIF in the model directory, else a synthetic clip).", valueName: "path"))
    var video: String?

    @Flag(name: .customLong("compare-ort"), help: "Also time ONNX Runtime on the same models and inputs.")
    var compareORT = false

    @Flag(help: "Print time per op type for each graph.")
    var ops = false

    @Flag(help: "Benchmark the GEMM shapes of the three networks and the SIMD kernels.")
    var kernels = false

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
        if warmup < 0 { throw ValidationError("--warmup must not be negative") }
    }

    struct Row {
        var name: String
        var times: [Double]
        var gigaFLOPs: Double?
        var peakRSSMegabytes: Double
        var ortKey: String?
        /// ONNX Runtime's times on the same graph and input, each taken right after one of ours.
        var ortTimes: [Double] = []
        var note: String?
        var ops: [ExecutionProfile.OpTotal] = []
        /// Graph runs per timed sample (the op totals cover runs x this).
        var runsPerSample = 1

        var median: Double { Statistics.median(times) }
        var minimum: Double { times.min() ?? 0 }
        var ortMedian: Double? { ortTimes.isEmpty ? nil : Statistics.median(ortTimes) }
        /// Whether `ortTimes[i]` was taken right after `times[i]` (false when the row reuses
        /// another row's ONNX Runtime times).
        var alternated = false
        /// The median of the per-sample ratios ours_i / ORT_i of an alternated row. This VM's
        /// speed drifts by 10-20 % over seconds; a drift moves both runs of a pair, so this
        /// estimate of the ratio varies less between bench runs than the ratio of the medians.
        var pairedRatio: Double? {
            guard alternated, !times.isEmpty, times.count == ortTimes.count, !ortTimes.contains(where: { $0 <= 0 }) else { return nil }
            return Statistics.median(zip(times, ortTimes).map { $0 / $1 })
        }
        /// In how many of an alternated row's pairs our run was the faster one: how reliably the
        /// row beats ONNX Runtime on a machine whose speed drifts, which a median cannot show.
        var fasterPairs: Int? {
            guard pairedRatio != nil else { return nil }
            return zip(times, ortTimes).filter { $0 < $1 }.count
        }
    }

    func run() throws {
        // The clip is used only by the job rows, minutes in: check it before anything is timed.
        if let video, !FileManager.default.isReadableFile(atPath: video) {
            throw CLIError("\(video): file not found or not readable")
        }
        models.applyEngineSettings()
        let threads = Threading.threadCount
        let networks = try models.loadNetworks()
        let tokenizer = try models.loadTokenizer()
        let classifier = ZeroShotClassifier(networks: networks, tokenizer: tokenizer)
        let labels = PromptTemplates.defaultLabels

        // Inputs: seeded, shaped like the real ones.
        var random = SplitMix64(seed: 2024)
        let frames = try Tensor(random.floats(8 * 3 * 224 * 224, -2, 2), shape: [8, 3, 224, 224])
        // The fusion graph's declared feature width (512 in the ailia files; smaller in test models).
        let featureWidth: Int
        if let shape = networks.fusion.inputs.first?.info.shape, shape.count == 3, case .fixed(let width) = shape[2], width > 0 {
            featureWidth = width
        } else {
            featureWidth = 512
        }
        let frameFeatures = try Tensor(random.floats(8 * featureWidth, -1, 1), shape: [1, 8, featureWidth])
        let tokens = try userFacing { try classifier.promptTokens(labels: labels) }
        let encoder = try networks.textEncoder
        let buckets = encoder.plan(tokens)
        let neededTokens = TextEncoder.neededLengths(tokens).reduce(0, +)
        let textRows = tokens.shape[0]

        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("action-clip-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        // ONNX Runtime runs in a child process that answers one run per request, so each of our
        // runs is followed by one of its runs on the same input: both see the same machine.
        let ort = compareORT ? try startONNXRuntime(networks: networks, inputs: ["image": frames, "fusion": frameFeatures, "text": tokens],
                                                    scratch: scratch, threads: threads) : nil
        defer { ort?.close() }

        var rows: [Row] = []
        /// Times `body`; with ONNX Runtime running and `ortKey` set, alternates each run with one of
        /// ONNX Runtime's on that graph (`reuseORT` takes an earlier row's ONNX Runtime times instead).
        /// `repeats` > 1 times that many back-to-back runs per sample (on both engines) and reports
        /// the mean per run: for a graph of a few ms, one run from an idle machine measures mostly
        /// how fast this VM wakes up.
        func measure(_ name: String, gigaFLOPs: Double?, ortKey: String? = nil, reuseORT: Bool = false, repeats: Int = 1,
                     note: String? = nil, _ body: () throws -> Void) throws {
            let alternate = reuseORT ? nil : ortKey.flatMap { key in ort.map { ($0, key) } }
            for _ in 0..<warmup {
                try userFacing(body)
                if let (server, key) = alternate { _ = try server.run(key) }
            }
            var times: [Double] = []
            var ortTimes: [Double] = []
            let clock = ContinuousClock()
            let collected = try ExecutionProfile.collect { () throws -> Void in
                for _ in 0..<runs {
                    let start = clock.now
                    for _ in 0..<repeats { try userFacing(body) }
                    times.append((clock.now - start).seconds * 1000 / Double(repeats))
                    if let (server, key) = alternate {
                        // bench_ort.py pauses 0.15 s after its runs (its threads spin on); the
                        // same pause here makes both engines start from the same idle machine.
                        Thread.sleep(forTimeInterval: 0.15)
                        ortTimes.append(try server.run(key, repeats: repeats))
                    }
                }
            }
            if reuseORT, let ortKey { ortTimes = rows.last(where: { $0.ortKey == ortKey && !$0.ortTimes.isEmpty })?.ortTimes ?? [] }
            // The FLOP floors are those of the ailia ViT-B/32 graphs; for other sizes no rate is shown.
            var row = Row(name: name, times: times, gigaFLOPs: featureWidth == 512 ? gigaFLOPs : nil, peakRSSMegabytes: Self.peakRSSMegabytes(),
                          ortKey: ortKey, ortTimes: ortTimes, note: note, ops: ops ? collected.totals : [], runsPerSample: repeats)
            row.alternated = alternate != nil
            rows.append(row)
        }

        try measure("image (8 frames)", gigaFLOPs: 70.5, ortKey: "image") { _ = try networks.encodeFrames(frames) }
        try measure("fusion (1 video)", gigaFLOPs: 0.30, ortKey: "fusion", repeats: Self.fusionRepeats,
                    note: "each sample: \(Self.fusionRepeats) runs back to back, mean per run") { _ = try networks.fuse(frameFeatures) }
        // The true-length row's work and note: prefix trees, else length buckets, else the
        // 77-token fallback.
        let trees = encoder.trees(tokens)
        // Token positions the true-length row runs (also the size of the kernel bench's text rows).
        let computedTokens = trees.isEmpty ? buckets.reduce(0) { $0 + $1.rows.count * $1.length } : trees.reduce(0) { $0 + $1.count }
        let trueLengthFLOPs: Double
        let trueNote: String
        if !trees.isEmpty {
            trueLengthFLOPs = trees.reduce(0) { $0 + Self.textGigaFLOPs(rows: 1, length: $1.count) }
            trueNote = "\(trees.count) prefix tree\(trees.count == 1 ? "" : "s") of \(trees.map { String($0.count) }.joined(separator: ", ")) nodes for \(textRows) rows: \(computedTokens) token positions run, \(neededTokens) needed by the rows one by one"
        } else {
            trueLengthFLOPs = buckets.isEmpty ? Self.textGigaFLOPs(rows: textRows, length: 77)
                : buckets.reduce(0) { $0 + Self.textGigaFLOPs(rows: $1.rows.count, length: $1.length) }
            if encoder.usesTrueLength {
                // A star marks the runs whose last block runs at one position (`eot-position`).
                let starred = { (bucket: TextEncoder.Bucket) in bucket.endsAtLastToken && encoder.usesEOTPosition }
                trueNote = "\(buckets.count) runs, lengths \(buckets.map { "\($0.length)x\($0.rows.count)\(starred($0) ? "*" : "")" }.joined(separator: " ")); \(computedTokens) tokens run, \(neededTokens) needed"
                    + (buckets.contains(where: starred) ? " (* every row ends at the last token: the last block runs at that position only)" : "")
            } else {
                trueNote = "fell back to 77 tokens: \(encoder.fallbackReason ?? "?")"
            }
        }
        var trueLengthFeatures: Tensor?
        var fullFeatures: Tensor?
        try measure("text true length (\(textRows) rows)", gigaFLOPs: trueLengthFLOPs, ortKey: "text", note: trueNote) {
            trueLengthFeatures = try encoder.encode(tokens)
        }
        try measure("text full 77 (\(textRows) rows)", gigaFLOPs: Self.textGigaFLOPs(rows: textRows, length: 77), ortKey: "text",
                    reuseORT: true) {
            fullFeatures = try encoder.encodeFullLength(tokens)
        }
        // The two text rows must agree: report how closely (relative to the largest feature).
        if let trueLengthFeatures, let fullFeatures, let index = rows.firstIndex(where: { $0.name.hasPrefix("text true") }) {
            let full = try userFacing { try fullFeatures.toArray(Float.self) }
            let fast = try userFacing { try trueLengthFeatures.toArray(Float.self) }
            let scale = max(1e-30, full.map { abs(Double($0)) }.max() ?? 0)
            let worst = zip(fast, full).map { abs(Double($0) - Double($1)) }.max() ?? 0
            rows[index].note = (rows[index].note ?? "") + String(format: "; max difference to the 77-token run %.2e relative", worst / scale)
        }

        // The whole default job.
        let clip = try jobClip()
        let cache: TextFeatureCache? = try? models.textFeatureCacheOrThrow(for: networks, directory: (scratch as NSString).appendingPathComponent("cache"))
        let jobFLOPs = 70.5 + 0.30 + trueLengthFLOPs
        try measure("job: 1 clip, 10 labels, no cache", gigaFLOPs: jobFLOPs, note: clip.description) {
            _ = try clip.classify(ZeroShotClassifier(networks: networks, tokenizer: tokenizer), labels: labels)
        }
        if let cache {
            let cached = ZeroShotClassifier(networks: networks, tokenizer: tokenizer, textCache: cache)
            _ = try userFacing { try clip.classify(cached, labels: labels) }  // fills the cache
            try measure("job: 1 clip, 10 labels, warm cache", gigaFLOPs: 70.5 + 0.30, note: clip.description) {
                let cachedHit = try clip.classify(cached, labels: labels)
                if !cachedHit { throw CLIError("the warm-cache job missed the text-feature cache") }
            }
        }

        // Loading: the three files parsed, their weights mapped (or copied) and the graphs compiled.
        try measure("load: the three models", gigaFLOPs: nil, note: "with the aligned weight cache \(WeightCacheSettings.fromEnvironment().directory == nil ? "off" : "on")") {
            _ = try ActionCLIPNetworks(imagePath: networks.imagePath, textPath: networks.textPath, fusionPath: networks.fusionPath)
        }

        // The whole job as a user runs it: a new process each time, text-feature cache emptied
        // before each run or left warm. Peak RSS is the child's own (`ChildProcess`).
        if case .file(let path) = clip {
            let textCache = (scratch as NSString).appendingPathComponent("process-cache")
            let arguments = ["--model-dir", models.resolvedModelDirectory, "--offline", "-v", path, "--seed", "0",
                             "--threads", String(threads), "--precision", models.precisionOption.precision.rawValue]
                + (models.vocab.map { ["--vocab", $0] } ?? [])
            // The text cache goes to the scratch folder; the weight cache stays where it is.
            var environment = ["XDG_CACHE_HOME": textCache]
            environment["ACTION_CLIP_WEIGHT_CACHE"] = WeightCacheSettings.fromEnvironment().directory ?? "0"
            for warm in [false, true] {
                var times: [Double] = []
                var peak = 0.0
                if warm { _ = try ChildProcess.run(arguments, environment: environment) }
                for run in 0..<(warmup + runs) {
                    if !warm { try? FileManager.default.removeItem(atPath: textCache) }
                    let result = try ChildProcess.run(arguments, environment: environment)
                    guard run >= warmup else { continue }
                    times.append(result.milliseconds)
                    peak = max(peak, result.peakRSSMegabytes)
                }
                rows.append(Row(name: "process: whole job, \(warm ? "warm" : "empty") text cache", times: times, gigaFLOPs: nil,
                                peakRSSMegabytes: peak, note: "new `action-clip` process per run; peak MB is the child's own (VmHWM)"))
            }
        }

        ort?.close()
        let kernelRows = kernels ? try KernelBench(runs: runs, warmup: warmup, textTokens: computedTokens).run() : []

        if json {
            print(jsonReport(rows: rows, kernelRows: kernelRows, threads: threads, ortVersion: ort?.version).rendered(indent: 2))
        } else {
            print(textReport(rows: rows, kernelRows: kernelRows, threads: threads, ortVersion: ort?.version), terminator: "")
        }
    }

    /// Fusion runs per timed sample (see `measure`): one run is ~5 ms, and after the 0.15 s pause
    /// between engines a single run took 11-14 ms here (6-7 for ONNX Runtime), slower even on one
    /// thread; ten back to back measure the graph rather than the wake-up.
    static let fusionRepeats = 10

    /// Text encoder FLOPs for `rows` rows of `length` tokens, CLIP text (width 512, 12 layers, MLP
    /// 2048): per layer and token 2·512·(1536 + 512 + 2·2048) for the projections and MLP, plus
    /// 2·2·length·512 for the attention products, and the final 512×512 projection per row.
    /// At length 77 this is 5.96 GFLOP per row.
    static func textGigaFLOPs(rows: Int, length: Int) -> Double {
        let perLayer = Double(length) * 2 * 512 * 6144 + 4 * Double(length * length) * 512
        return Double(rows) * (12 * perLayer + 2 * 512 * 512) / 1e9
    }

    static func peakRSSMegabytes() -> Double {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        #if canImport(Darwin)
        return Double(usage.ru_maxrss) / 1_048_576  // bytes on macOS
        #else
        return Double(usage.ru_maxrss) / 1024  // kilobytes on Linux
        #endif
    }

    // MARK: Whole job

    /// The clip of the whole-job rows: a file, or synthetic frames made in memory.
    enum JobClip: CustomStringConvertible {
        case file(String)
        case synthetic(Tensor)

        var description: String {
            switch self {
            case .file(let path): return (path as NSString).lastPathComponent
            case .synthetic: return "synthetic 8-frame clip"
            }
        }

        /// Runs the job; returns whether the text features came from the cache.
        func classify(_ classifier: ZeroShotClassifier, labels: [String]) throws -> Bool {
            switch self {
            case .file(let path):
                return try classifier.classify(videos: [path], labels: labels, sampling: .random(seed: 0), channelOrder: .rgb).textFeaturesCached
            case .synthetic(let frames):
                let features = try classifier.networks.encodeFrames(frames)
                let fused = try classifier.networks.fuse(try features.reshaped([1, 8, features.count / 8]))
                let text = try classifier.textFeaturesReportingCache(labels: labels)
                _ = try ZeroShotScoring.probabilities(videoFeatures: fused, textFeatures: text.features,
                                                      templateCount: PromptTemplates.templates.count, labelCount: labels.count)
                return text.cached
            }
        }
    }

    func jobClip() throws -> JobClip {
        if let video { return .file(video) }
        let sample = (models.resolvedModelDirectory as NSString).appendingPathComponent(SampleVideo.fileName)
        if FileManager.default.fileExists(atPath: sample) { return .file(sample) }
        // A moving gradient, 8 frames of 320x240, through the real preprocessing.
        var frames: [Frame] = []
        for index in 0..<8 {
            var pixels = [UInt8](repeating: 0, count: 320 * 240 * 3)
            for y in 0..<240 {
                for x in 0..<320 {
                    let base = (y * 320 + x) * 3
                    pixels[base] = UInt8(truncatingIfNeeded: x + index * 9)
                    pixels[base + 1] = UInt8(truncatingIfNeeded: y * 2)
                    pixels[base + 2] = UInt8(truncatingIfNeeded: (x + y) / 2 + index * 17)
                }
            }
            frames.append(try userFacing { try Frame(width: 320, height: 240, pixels: pixels) })
        }
        return .synthetic(try userFacing { try VideoPreprocessor().prepare(frames: frames, channelOrder: .rgb) })
    }

    // MARK: ONNX Runtime

    /// Starts Reference/bench_ort.py in its serving mode on the same model files and inputs.
    func startONNXRuntime(networks: ActionCLIPNetworks, inputs: [String: Tensor], scratch: String,
                          threads: Int) throws -> ORTServer {
        let python = try Self.locate(environment: "ACTION_CLIP_PYTHON", relative: ".venv/bin/python",
                                     what: "the project venv's Python (create it with: bash Reference/setup_venv.sh)")
        let script = try Self.locate(environment: nil, relative: "Reference/bench_ort.py", what: "Reference/bench_ort.py")
        let inputDirectory = (scratch as NSString).appendingPathComponent("ort-inputs")
        try userFacing {
            try FileManager.default.createDirectory(atPath: inputDirectory, withIntermediateDirectories: true)
            for (name, tensor) in inputs { try NPY.write(tensor, to: (inputDirectory as NSString).appendingPathComponent("\(name).npy")) }
        }
        return try ORTServer(python: python, arguments: [script, "--serve", "--inputs", inputDirectory,
                                                         "--image", networks.imagePath, "--text", networks.textPath,
                                                         "--fusion", networks.fusionPath, "--threads", String(threads)])
    }

    /// A file from an environment variable, else relative to the current directory, else relative
    /// to the project root above this executable (`<root>/.build/<config>/action-clip`).
    static func locate(environment variable: String?, relative: String, what: String) throws -> String {
        if let variable, let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: value) else { throw CLIError("$\(variable)=\(value) is not executable") }
            return value
        }
        var candidates = [(FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(relative)]
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var root = executable.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(root.appendingPathComponent(relative).path)
            root = root.deletingLastPathComponent()
        }
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) { return found }
        throw CLIError("--compare-ort needs \(what); not found at \(candidates[0]) or next to the executable")
    }

    // MARK: Output

    func textReport(rows: [Row], kernelRows: [KernelBench.Result], threads: Int, ortVersion: String?) -> String {
        var text = "action-clip bench: \(threads) threads (the engine's own; OpenBLAS single-threaded per call), "
        text += "\(runs) runs after \(warmup) warm-up, OpenBLAS \(Threading.blasCoreName)"
        if PackedGEMM.precision != .float32 { text += ", weight products in \(PackedGEMM.precision.rawValue) (\(PackedGEMM.path.rawValue))" }
        if let ortVersion { text += ", ONNX Runtime \(ortVersion) with \(threads) threads, its runs alternated with ours" }
        text += "\n\n"
        text += Padding.left("row", 38) + Padding.right("median ms", 11) + Padding.right("min ms", 11)
            + Padding.right("GFLOP/s", 10) + Padding.right("peak MB", 10)
        text += (ortVersion != nil ? Padding.right("ORT ms", 11) + Padding.right("ours/ORT", 10) + Padding.right("paired", 8)
            + Padding.right("faster", 8) : "") + "\n"
        for row in rows {
            let rate = row.gigaFLOPs.map { String(format: "%.1f", $0 / (row.median / 1000)) } ?? "-"
            text += Padding.left(row.name, 38) + Padding.right(String(format: "%.1f", row.median), 11)
                + Padding.right(String(format: "%.1f", row.minimum), 11) + Padding.right(rate, 10)
                + Padding.right(String(format: "%.0f", row.peakRSSMegabytes), 10)
            if ortVersion != nil {
                if let ort = row.ortMedian {
                    text += Padding.right(String(format: "%.1f", ort), 11) + Padding.right(String(format: "%.3f", row.median / ort), 10)
                        + Padding.right(row.pairedRatio.map { String(format: "%.3f", $0) } ?? "-", 8)
                        + Padding.right(row.fasterPairs.map { "\($0)/\(row.times.count)" } ?? "-", 8)
                } else {
                    text += Padding.right("-", 11) + Padding.right("-", 10) + Padding.right("-", 8) + Padding.right("-", 8)
                }
            }
            text += "\n"
            if let note = row.note { text += "    \(note)\n" }
        }
        if ops {
            for row in rows where !row.ops.isEmpty {
                text += "\nops: \(row.name) (per run)\n"
                let total = row.ops.reduce(0) { $0 + $1.seconds }
                let graphRuns = runs * row.runsPerSample
                for op in row.ops {
                    text += "  " + Padding.left(op.opType, 18)
                        + String(format: " %9.2f ms %5.1f%% %7d calls\n", op.seconds * 1000 / Double(graphRuns),
                                 total > 0 ? op.seconds / total * 100 : 0, op.calls / graphRuns)
                }
            }
        }
        if !kernelRows.isEmpty { text += "\n" + KernelBench.report(kernelRows) }
        return text
    }

    func jsonReport(rows: [Row], kernelRows: [KernelBench.Result], threads: Int, ortVersion: String?) -> JSONValue {
        let rowValues: [JSONValue] = rows.map { row in
            var members: [(String, JSONValue)] = [
                ("name", .string(row.name)), ("median_ms", .number(row.median)), ("min_ms", .number(row.minimum)),
                ("times_ms", .array(row.times.map { .number($0) })), ("peak_rss_mb", .number(row.peakRSSMegabytes)),
            ]
            if let flops = row.gigaFLOPs {
                members.append(("gflop", .number(flops)))
                members.append(("gflops", .number(flops / (row.median / 1000))))
            }
            if let ort = row.ortMedian {
                members.append(("ort_median_ms", .number(ort)))
                members.append(("ort_min_ms", .number(row.ortTimes.min() ?? ort)))
                members.append(("ort_times_ms", .array(row.ortTimes.map { .number($0) })))
                members.append(("ratio_to_ort", .number(row.median / ort)))
                if let paired = row.pairedRatio { members.append(("paired_ratio_to_ort", .number(paired))) }
                if let faster = row.fasterPairs { members.append(("faster_pairs", .number(Double(faster)))) }
            }
            if let note = row.note { members.append(("note", .string(note))) }
            if !row.ops.isEmpty {
                members.append(("ops", .array(row.ops.map { op in
                    .object([("op", .string(op.opType)), ("ms_per_run", .number(op.seconds * 1000 / Double(runs * row.runsPerSample))),
                             ("calls_per_run", .int(op.calls / (runs * row.runsPerSample)))])
                })))
            }
            return .object(members)
        }
        var members: [(String, JSONValue)] = [
            ("threads", .int(threads)), ("runs", .int(runs)), ("warmup", .int(warmup)),
            ("blas_core", .string(Threading.blasCoreName)), ("precision", .string(PackedGEMM.precision.rawValue)),
            ("rows", .array(rowValues)),
        ]
        if let ortVersion { members.append(("onnxruntime", .string(ortVersion))) }
        if !kernelRows.isEmpty { members.append(("kernels", .array(kernelRows.map(\.json)))) }
        return .object(members)
    }
}

/// Fixed-width columns (String(format:) ignores widths on %@ under swift-corelibs-foundation).
enum Padding {
    static func left(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
    static func right(_ text: String, _ width: Int) -> String {
        text.count >= width ? " " + text : String(repeating: " ", count: width - text.count) + text
    }
}

enum Statistics {
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}

// MARK: - Text-feature cache from the model options

extension ModelOptions {
    /// The text-feature cache for the text model at `textPath`, keyed by its SHA-256 from the model
    /// store's manifest; nil (with a warning) when the checksum cannot be had.
    func textFeatureCache(textPath: String) -> TextFeatureCache? {
        do {
            return try textFeatureCacheOrThrow(textPath: textPath, directory: TextFeatureCache.defaultDirectory())
        } catch {
            Diagnostics.warn("text-feature cache disabled: \(error)")
            return nil
        }
    }

    func textFeatureCacheOrThrow(for networks: ActionCLIPNetworks, directory: String) throws -> TextFeatureCache {
        try textFeatureCacheOrThrow(textPath: networks.textPath, directory: directory)
    }

    func textFeatureCacheOrThrow(textPath: String, directory: String) throws -> TextFeatureCache {
        let fileName = (textPath as NSString).lastPathComponent
        let checksum = try store().checksum(of: fileName)
        return try TextFeatureCache(directory: directory, modelSHA256: checksum)
    }
}

// MARK: - Kernel benchmarks

/// GEMM shapes of the three networks against the measured sgemm peak, and the SIMD kernels
/// against their reference (Double, scalar) versions.
struct KernelBench {
    let runs: Int
    let warmup: Int
    /// Tokens of the true-length text run (its GEMM M).
    let textTokens: Int

    struct Result {
        let name: String
        let milliseconds: Double
        /// GEMM: GFLOP/s and fraction of peak. SIMD: speed-up over the reference and max error.
        let rate: Double?
        let ofPeak: Double?
        let referenceMilliseconds: Double?
        let maximumError: Double?
        /// What `referenceMilliseconds` timed: the Double reference, or sgemm for the skinny rows.
        var baseline = "reference"

        var json: JSONValue {
            var members: [(String, JSONValue)] = [("name", .string(name)), ("median_ms", .number(milliseconds))]
            if let rate { members.append(("gflops", .number(rate))) }
            if let ofPeak { members.append(("of_peak", .number(ofPeak))) }
            if let referenceMilliseconds { members.append(("reference_ms", .number(referenceMilliseconds))) }
            if let maximumError { members.append(("max_abs_error", .number(maximumError))) }
            members.append(("baseline", .string(baseline)))
            return .object(members)
        }
    }

    func time(_ count: Int? = nil, _ body: () throws -> Void) rethrows -> Double {
        for _ in 0..<warmup { try body() }
        let clock = ContinuousClock()
        var times: [Double] = []
        for _ in 0..<(count ?? runs) {
            let start = clock.now
            try body()
            times.append((clock.now - start).seconds * 1000)
        }
        return Statistics.median(times)
    }

    func gemm(m: Int, k: Int, n: Int, random: inout SplitMix64) throws -> Double {
        let a = random.floats(m * k)
        let b = random.floats(k * n)
        var c = [Float](repeating: 0, count: m * n)
        return try a.withUnsafeBufferPointer { aBuffer in
            try b.withUnsafeBufferPointer { bBuffer in
                try c.withUnsafeMutableBufferPointer { cBuffer in
                    guard let aPointer = aBuffer.baseAddress, let bPointer = bBuffer.baseAddress,
                          let cPointer = cBuffer.baseAddress else { return 0 }
                    return try time {
                        try BLAS.sgemm(transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1, a: aPointer, lda: k,
                                       b: bPointer, ldb: n, beta: 0, c: cPointer, ldc: n)
                    }
                }
            }
        }
    }

    func run() throws -> [Result] {
        var random = SplitMix64(seed: 77)
        var results: [Result] = []
        let peakMilliseconds = try gemm(m: 2048, k: 2048, n: 2048, random: &random)
        let peak = 2 * pow(2048.0, 3) / (peakMilliseconds / 1000) / 1e9
        results.append(Result(name: "sgemm peak 2048x2048x2048", milliseconds: peakMilliseconds, rate: peak, ofPeak: 1,
                              referenceMilliseconds: nil, maximumError: nil))
        let text = max(1, textTokens)
        let shapes: [(String, Int, Int, Int)] = [
            ("image qkv", 400, 768, 2304), ("image out", 400, 768, 768), ("image fc", 400, 768, 3072),
            ("image proj", 400, 3072, 768), ("image patch conv", 392, 3072, 768),
            ("text qkv (77)", 12320, 512, 1536), ("text out (77)", 12320, 512, 512),
            ("text fc (77)", 12320, 512, 2048), ("text proj (77)", 12320, 2048, 512),
            ("text qkv (true)", text, 512, 1536), ("text out (true)", text, 512, 512),
            ("text fc (true)", text, 512, 2048), ("text proj (true)", text, 2048, 512),
            ("fusion qkv", 8, 512, 1536), ("fusion fc", 8, 512, 2048), ("fusion proj", 8, 2048, 512),
        ]
        for (name, m, k, n) in shapes {
            let milliseconds = try gemm(m: m, k: k, n: n, random: &random)
            let rate = 2 * Double(m) * Double(k) * Double(n) / (milliseconds / 1000) / 1e9
            results.append(Result(name: "\(name) \(m)x\(k)x\(n)", milliseconds: milliseconds, rate: rate, ofPeak: rate / peak,
                                  referenceMilliseconds: nil, maximumError: nil))
        }

        // The packed GEMM (weights in strips, as the loader stores them on AVX-512 CPUs) on the
        // same shapes, against sgemm on the row-major weights; the few-row shapes with their
        // weights out of cache, as in the fusion graph.
        for (name, m, k, n) in shapes where n % PackedStrips.stripColumns == 0 {
            results.append(try packed(name: name, m: m, k: k, n: n, peak: peak, random: &random))
        }

        // The skinny-M kernel against sgemm on the fusion graph's shapes, then a row sweep for
        // the row range it is used for (SkinnyGEMM.rowRange).
        for (name, m, k, n) in [("fusion qkv", 8, 512, 1536), ("fusion out", 8, 512, 512), ("fusion fc", 8, 512, 2048),
                                ("fusion proj", 8, 2048, 512)] {
            results.append(try skinny(name: "skinny \(name) \(m)x\(k)x\(n)", m: m, k: k, n: n, random: &random))
        }
        for m in [1, 4, 12, 16, 24, 32, 48, 64] {
            results.append(try skinny(name: "skinny rows \(m)x512x2048", m: m, k: 512, n: 2048, random: &random))
        }

        // SIMD kernels against their references, on attention- and MLP-sized data.
        let softmaxRows = 8 * 8 * 77, softmaxColumns = 77
        let scores = try Tensor(random.floats(softmaxRows * softmaxColumns, -8, 8), shape: [softmaxRows, softmaxColumns])
        var fastSoftmax = scores
        let softmaxTime = try time { fastSoftmax = try softmax(scores, axis: 1) }
        var referenceSoftmax: [Float] = []
        let softmaxReference = time(1) {
            referenceSoftmax = ReferenceKernels.softmaxRows(Array(scores.floats), rows: softmaxRows, columns: softmaxColumns)
        }
        results.append(simd("softmax [\(softmaxRows), 77]", softmaxTime, softmaxReference, fastSoftmax, referenceSoftmax))

        let normRows = 1232, normColumns = 512
        let hidden = try Tensor(random.floats(normRows * normColumns, -3, 3), shape: [normRows, normColumns])
        let gamma = try Tensor(random.floats(normColumns, 0.5, 1.5), shape: [normColumns])
        let beta = try Tensor(random.floats(normColumns, -0.1, 0.1), shape: [normColumns])
        var fastNorm = hidden
        let normTime = try time { fastNorm = try layerNorm(hidden, gamma: gamma, beta: beta, epsilon: 1e-5) }
        var referenceNorm: [Float] = []
        let normReference = time(1) {
            referenceNorm = ReferenceKernels.layerNorm(Array(hidden.floats), rows: normRows, columns: normColumns,
                                                       gamma: Array(gamma.floats), beta: Array(beta.floats), epsilon: 1e-5)
        }
        results.append(simd("LayerNorm [\(normRows), 512]", normTime, normReference, fastNorm, referenceNorm))

        let activations = try Tensor(random.floats(400 * 3072, -6, 6), shape: [400, 3072])
        var fastGELU = activations
        let geluTime = try time { fastGELU = try quickGELU(activations) }
        var referenceGELU: [Float] = []
        let geluReference = time(1) { referenceGELU = ReferenceKernels.quickGELU(Array(activations.floats)) }
        results.append(simd("QuickGELU [400, 3072]", geluTime, geluReference, fastGELU, referenceGELU))

        let exponents = try Tensor(random.floats(1 << 20, -20, 20), shape: [1 << 20])
        var fastExp = exponents
        let expTime = try time { fastExp = try unary(.exp, exponents) }
        var referenceExp: [Float] = []
        let expReference = time(1) { referenceExp = ReferenceKernels.unary(.exp, Array(exponents.floats)) }
        results.append(simd("exp [1048576] (relative error)", expTime, expReference, fastExp, referenceExp, relative: true))

        // The per-head part of attention (AttentionHeads): the direct kernel against sgemm, for the
        // text heads at the default prompts' true length, ViT's 50 tokens and the full 77 tokens.
        for (name, length, batch, embed, heads, causal) in [
            ("text (true length)", 8, 160, 512, 8, true), ("text", 16, 160, 512, 8, true), ("text", 32, 160, 512, 8, true),
            ("image", 50, 8, 768, 12, false), ("text (77)", 77, 160, 512, 8, true),
        ] {
            results.append(try attentionHeads(name: name, length: length, batch: batch, embed: embed, heads: heads,
                                              causal: causal, random: &random))
        }
        return results
    }

    /// `AttentionHeads.run` on this CPU's direct kernel against the sgemm path, on a random
    /// packed projection [L, N, 3E] with a causal mask or none. The error is the largest
    /// difference between the two contexts relative to max(1, |sgemm|).
    func attentionHeads(name: String, length: Int, batch: Int, embed: Int, heads: Int, causal: Bool,
                        random: inout SplitMix64) throws -> Result {
        let qkv = random.floats(length * batch * 3 * embed, -1, 1)
        var mask = [Float](repeating: 0, count: length * length)
        if causal {
            for row in 0..<length { for column in (row + 1)..<max(row + 1, length) { mask[row * length + column] = -.infinity } }
        }
        var direct = [Float](repeating: 0, count: length * batch * embed), plain = direct
        let path = AttentionHeads.directPath
        let scale = 1 / Float(embed / heads).squareRoot()
        func timed(_ path: AttentionHeads.Path, _ output: inout [Float]) -> Double {
            qkv.withUnsafeBufferPointer { source in
                mask.withUnsafeBufferPointer { maskBuffer in
                    output.withUnsafeMutableBufferPointer { context in
                        guard let base = source.baseAddress, let out = context.baseAddress else { return 0 }
                        return time {
                            AttentionHeads.run(path: path, qkv: base, length: length, batch: batch, embed: embed, heads: heads,
                                               scale: scale, mask: causal ? maskBuffer.baseAddress : nil, maskStride: 0, context: out)
                        }
                    }
                }
            }
        }
        let directTime = timed(path, &direct)
        let sgemmTime = timed(.sgemm, &plain)
        let worst = zip(direct, plain).map { Double(abs($0 - $1)) / max(1, Double(abs($1))) }.max() ?? 0
        return Result(name: "attention heads \(name) L=\(length) x\(batch * heads) (\(path.rawValue))", milliseconds: directTime,
                      rate: nil, ofPeak: nil, referenceMilliseconds: sgemmTime, maximumError: worst, baseline: "sgemm")
    }

    /// The packed GEMM (`PackedGEMM`, the kernel for this CPU) for one shape against sgemm on the
    /// same weights row-major. Products of at most `SkinnyGEMM.rowRange` rows rotate through
    /// enough weight copies (64 MB) that each call finds its weight out of cache. The error is the
    /// largest |packed - sgemm| relative to max(1, |sgemm|).
    func packed(name: String, m: Int, k: Int, n: Int, peak: Double, random: inout SplitMix64) throws -> Result {
        let size = k * n
        let copies = m <= SkinnyGEMM.rowRange.upperBound ? max(2, (64 << 20) / (size * MemoryLayout<Float>.stride) + 1) : 1
        let rowMajor = UnsafeMutablePointer<Float>.allocate(capacity: copies * size)
        let strips = UnsafeMutablePointer<Float>.allocate(capacity: copies * size)
        defer { rowMajor.deallocate(); strips.deallocate() }
        for index in 0..<(copies * size) { rowMajor[index] = random.float(-0.1, 0.1) }
        for copy in 0..<copies { PackedStrips.pack(rows: k, columns: n, from: rowMajor + copy * size, rowPitch: n, into: strips + copy * size) }
        let weights = (0..<copies).map { PackedStrips(base: UnsafePointer(strips + $0 * size), rows: k, columns: n) }
        let a = random.floats(m * k)
        return try a.withUnsafeBufferPointer { aBuffer in
            guard let aPointer = aBuffer.baseAddress else { throw CLIError("empty packed-GEMM input") }
            let timing = try againstSgemm(m: m, n: n, copies: copies) { copy, c in
                PackedGEMM.multiply(rows: m, a: aPointer, lda: k, weights: weights[copy], c: c, ldc: n, accumulate: false)
            } sgemm: { copy, c in
                try BLAS.sgemm(transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1, a: aPointer, lda: k,
                               b: rowMajor + copy * size, ldb: n, beta: 0, c: c, ldc: n)
            }
            let rate = 2 * Double(m) * Double(k) * Double(n) / (timing.kernel / 1000) / 1e9
            return Result(name: "packed \(name) \(m)x\(k)x\(n) (\(PackedGEMM.path.rawValue)\(copies > 1 ? ", out of cache" : ""))",
                          milliseconds: timing.kernel, rate: rate, ofPeak: rate / peak, referenceMilliseconds: timing.sgemm,
                          maximumError: timing.worst, baseline: "sgemm")
        }
    }

    /// The skinny-M kernel (the path `linear` would take) against sgemm for one shape, both
    /// accumulating into a zeroed output as `linear` does. The weights rotate through enough
    /// copies (64 MB) that each call finds its weight out of cache, as in the fusion graph, whose
    /// 75 MB of weights exceed the L3. `referenceMilliseconds` is sgemm's time, the error is the
    /// largest |skinny - sgemm| relative to max(1, |sgemm|). The weights have the row pitch the
    /// loader gives such a weight (`MatrixRowPadding`), and both kernels read them at it.
    func skinny(name: String, m: Int, k: Int, n: Int, random: inout SplitMix64) throws -> Result {
        let pitch = MatrixRowPadding.rowPitch(dataType: .float32, shape: [k, n]) ?? n
        let size = k * pitch
        let copies = max(2, (64 << 20) / (size * MemoryLayout<Float>.stride) + 1)
        let weights = UnsafeMutablePointer<Float>.allocate(capacity: copies * size)
        defer { weights.deallocate() }
        for index in 0..<(copies * size) { weights[index] = random.float(-0.1, 0.1) }
        let a = random.floats(m * k)
        let path = SkinnyGEMM.selectedPath ?? .portable
        return try a.withUnsafeBufferPointer { aBuffer in
            guard let aPointer = aBuffer.baseAddress else { throw CLIError("empty skinny-GEMM input") }
            let timing = try againstSgemm(m: m, n: n, copies: copies) { copy, c in
                c.update(repeating: 0, count: m * n)
                SkinnyGEMM.accumulate(rows: m, k: k, n: n, a: aPointer, w: weights + copy * size, wRowPitch: pitch, c: c, path: path)
            } sgemm: { copy, c in
                c.update(repeating: 0, count: m * n)
                try BLAS.sgemm(transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1, a: aPointer, lda: k,
                               b: weights + copy * size, ldb: pitch, beta: 1, c: c, ldc: n)
            }
            return Result(name: "\(name) (\(path.rawValue)\(pitch == n ? "" : ", rows padded"))", milliseconds: timing.kernel,
                          rate: nil, ofPeak: nil, referenceMilliseconds: timing.sgemm, maximumError: timing.worst, baseline: "sgemm")
        }
    }

    /// Times `kernel` and then `sgemm`, each writing an m x n product into its own output, with
    /// every call on the next of `copies` weight copies (so a call can find its weight out of
    /// cache); then runs both once more on the same copy and returns the largest difference
    /// relative to max(1, |sgemm|).
    func againstSgemm(m: Int, n: Int, copies: Int, kernel: (Int, UnsafeMutablePointer<Float>) -> Void,
                      sgemm: (Int, UnsafeMutablePointer<Float>) throws -> Void) throws -> (kernel: Double, sgemm: Double, worst: Double) {
        var fast = [Float](repeating: 0, count: m * n), plain = fast
        var copy = 0
        func next() -> Int {
            copy = (copy + 1) % copies
            return copy
        }
        let kernelTime = fast.withUnsafeMutableBufferPointer { c in
            time { if let base = c.baseAddress { kernel(next(), base) } }
        }
        let sgemmTime = try plain.withUnsafeMutableBufferPointer { c in
            try time { if let base = c.baseAddress { try sgemm(next(), base) } }
        }
        let last = next()
        fast.withUnsafeMutableBufferPointer { c in if let base = c.baseAddress { kernel(last, base) } }
        try plain.withUnsafeMutableBufferPointer { c in if let base = c.baseAddress { try sgemm(last, base) } }
        let worst = zip(fast, plain).map { Double(abs($0 - $1)) / max(1, Double(abs($1))) }.max() ?? 0
        return (kernelTime, sgemmTime, worst)
    }

    func simd(_ name: String, _ fast: Double, _ reference: Double, _ output: Tensor, _ expected: [Float],
              relative: Bool = false) -> Result {
        var worst = 0.0
        for (x, y) in zip(output.floats, expected) {
            let difference = abs(Double(x) - Double(y))
            worst = max(worst, relative ? difference / max(abs(Double(y)), 1e-30) : difference)
        }
        return Result(name: name, milliseconds: fast, rate: nil, ofPeak: nil, referenceMilliseconds: reference, maximumError: worst)
    }

    static func report(_ results: [Result]) -> String {
        var text = "kernels (median ms; GEMM: GFLOP/s and share of the measured sgemm peak, packed: also speed-up over sgemm; SIMD: speed-up over the Double reference; skinny: speed-up over sgemm, weights out of cache; attention heads: speed-up over the sgemm path)\n"
        for result in results {
            if let rate = result.rate, let share = result.ofPeak {
                text += "  " + Padding.left(result.name, 40)
                    + String(format: " %9.3f ms %8.1f GFLOP/s %5.0f%%", result.milliseconds, rate, share * 100)
                if let reference = result.referenceMilliseconds {
                    text += "  " + result.baseline + String(format: " %.3f ms  x%.2f  max error %.2g",
                                                            reference, reference / max(result.milliseconds, 1e-9), result.maximumError ?? 0)
                }
                text += "\n"
            } else if let reference = result.referenceMilliseconds {
                text += "  " + Padding.left(result.name, 40) + String(format: " %9.3f ms  ", result.milliseconds)
                    + Padding.left(result.baseline, 9)
                    + String(format: " %9.3f ms  x%.2f  max error %.2g\n",
                             reference, reference / max(result.milliseconds, 1e-9), result.maximumError ?? 0)
            }
        }
        return text
    }
}

/// Runs this executable as a child process, for the whole-job rows of `bench`.
enum ChildProcess {
    struct Result {
        let milliseconds: Double
        let peakRSSMegabytes: Double
    }

    /// Runs `/proc/self/exe arguments` with `environment` added to this process's, output
    /// discarded; throws unless it exits with status 0. The peak RSS is the child's own VmHWM
    /// (`PeakMemoryReport`), not wait4's ru_maxrss, which starts from this process's RSS.
    static func run(_ arguments: [String], environment: [String: String]) throws -> Result {
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        let report = FileManager.default.temporaryDirectory.appendingPathComponent("action-clip-rss-\(getpid())").path
        try? FileManager.default.removeItem(atPath: report)
        defer { try? FileManager.default.removeItem(atPath: report) }
        merged["ACTION_CLIP_PEAK_RSS_FILE"] = report
        let executable = "/proc/self/exe"
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let clock = ContinuousClock()
        let start = clock.now
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard spawned == 0 else { throw CLIError("bench: cannot start a child process: \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw CLIError("bench: waiting for the child process failed") }
        }
        let milliseconds = (clock.now - start).seconds * 1000
        // WIFEXITED and WEXITSTATUS are macros Swift does not import.
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw CLIError("bench: `action-clip \(arguments.joined(separator: " "))` failed (wait status \(status))")
        }
        let kilobytes = (try? String(contentsOfFile: report, encoding: .utf8))
            .flatMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        guard let kilobytes else { throw CLIError("bench: the child process did not report its peak memory") }
        return Result(milliseconds: milliseconds, peakRSSMegabytes: kilobytes / 1024)
    }
}
