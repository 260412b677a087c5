import Foundation
import Models
import Tensor
import Testing

/// End-to-end tests of the `action-clip` executable on the tiny stand-in models
/// (Tests/Fixtures/tiny): exit codes, the ailia text block, JSON, and every subcommand.
@Suite(.serialized) struct CLIExecutableTests {
    /// Classify arguments on the tiny models and the small fixture GIF (never downloads).
    static func classifyArguments(_ models: URL, _ extra: [String]) -> [String] {
        ["--model-dir", models.path, "--offline", "-v", CLI.sampleClip, "--seed", "0"] + extra
    }

    // MARK: classify

    @Test func ailiaBlockMatchesTheScriptsFormat() throws {
        let models = try CLI.tinyModelDirectory()
        defer { try? FileManager.default.removeItem(at: models) }
        let result = try CLI.run(Self.classifyArguments(models, []))
        #expect(result.status == 0, "stderr: \(result.standardError)")
        let lines = result.lines
        try #require(lines.count == 2 + 5 * 3 + 1, "got \(lines)")
        #expect(lines[0] == String(repeating: "=", count: 62))
        #expect(lines[1] == "class_count = 10")
        for rank in 0..<5 {
            #expect(lines[2 + rank * 3] == "+ idx = \(rank)")
            let category = lines[3 + rank * 3]
            let match = category.wholeMatch(of: #/  category = (\d+) \[(.+)\]/#)
            let index = try #require(match.flatMap { Int($0.1) }, "bad category line '\(category)'")
            #expect(PromptTemplates.defaultLabels.indices.contains(index))
            #expect(match.map { String($0.2) } == PromptTemplates.defaultLabels[index])
            #expect(lines[4 + rank * 3].hasPrefix("  prob = "))
        }
        #expect(lines.last == "")
        #expect(result.standardError.contains("no labels given"))
    }

    /// The text-feature cache returns exactly what the network computes: a first run (which
    /// fills the cache), a second (which reads it) and a `--no-cache` run print the same bytes.
    @Test func warmTextCachePrintsTheSameAsNoCache() throws {
        let models = try CLI.tinyModelDirectory()
        let cacheHome = try CLI.temporaryDirectory("cache-home")
        defer {
            try? FileManager.default.removeItem(at: models)
            try? FileManager.default.removeItem(at: cacheHome)
        }
        let environment = ["XDG_CACHE_HOME": cacheHome.path]
        let first = try CLI.run(Self.classifyArguments(models, []), environment: environment)
        let cached = try FileManager.default.contentsOfDirectory(atPath: cacheHome.appendingPathComponent("action-clip").path)
        #expect(cached.contains { $0.hasSuffix(".features") }, "no feature file written: \(cached)")
        let second = try CLI.run(Self.classifyArguments(models, []), environment: environment)
        let bypassed = try CLI.run(Self.classifyArguments(models, ["--no-cache"]), environment: environment)
        for result in [first, second, bypassed] { #expect(result.status == 0, "stderr: \(result.standardError)") }
        #expect(first.standardOutput.contains("prob = "))
        #expect(second.standardOutput == first.standardOutput)
        #expect(bypassed.standardOutput == first.standardOutput)
    }

    @Test func probabilitiesArePythonReprOfFloat32AndSumToOne() throws {
        let models = try CLI.tinyModelDirectory()
        defer { try? FileManager.default.removeItem(at: models) }
        let result = try CLI.run(Self.classifyArguments(models, ["--top", "10"]))
        #expect(result.status == 0, "stderr: \(result.standardError)")
        let probabilityLines = result.lines.filter { $0.hasPrefix("  prob = ") }
        #expect(probabilityLines.count == 10)
        var probabilities: [Double] = []
        var categories = Set<Int>()
        for line in result.lines where line.hasPrefix("  category = ") {
            if let number = line.wholeMatch(of: #/  category = (\d+) .*/#).flatMap({ Int($0.1) }) { categories.insert(number) }
        }
        #expect(categories == Set(0..<10), "every label once")
        for line in probabilityLines {
            let text = String(line.dropFirst("  prob = ".count))
            let value = try #require(Double(text), "'\(text)' is not a number")
            // numpy float32 printed through an f-string = repr of the widened double: the shortest
            // digits that round-trip the double, which is always exactly a float32 value.
            #expect(Double(Float(value)) == value, "\(text) is not a float32 value")
            #expect(value.description == text, "\(text) is not the shortest repr")
            #expect(text.wholeMatch(of: /(0|[1-9])\.\d+(e-\d\d)?|[1-9]e-\d\d/) != nil, "\(text) is not Python float repr style")
            probabilities.append(value)
        }
        #expect(abs(probabilities.reduce(0, +) - 1) < 1e-5)
        #expect(probabilities == probabilities.sorted(by: >), "printed in descending order")
    }

    @Test func jsonSchema() throws {
        let models = try CLI.tinyModelDirectory()
        defer { try? FileManager.default.removeItem(at: models) }
        let gif = CLI.sampleClip
        let video = CLI.frameFixtures.appendingPathComponent("video_h264.mp4").path
        let result = try CLI.run(["--model-dir", models.path, "--offline", "-v", gif, "-v", video, "--seed", "42",
                                  "-t", "running", "-t", "jumping", "-t", "swimming", "--json"])
        #expect(result.status == 0, "stderr: \(result.standardError)")
        let root = try #require(try CLI.json(result.standardOutput) as? [String: Any])
        #expect(Set(root.keys) == ["results", "timings_ms"])
        let timings = try #require(root["timings_ms"] as? [String: Double])
        #expect(Set(timings.keys) == ["decode_and_preprocess", "image_and_fusion", "text", "scoring"])
        let results = try #require(root["results"] as? [[String: Any]])
        try #require(results.count == 2)
        let expectedIds = [try FrameSampling.random(seed: 42).select(frameCount: 12).indices]
        for (item, path) in zip(results, [gif, video]) {
            #expect(Set(item.keys) == ["video", "frame_count", "frame_ids", "seed", "labels", "scores", "top", "warnings"])
            #expect(item["video"] as? String == path)
            #expect(item["seed"] as? Int == 42)
            #expect(item["labels"] as? [String] == ["running", "jumping", "swimming"])
            let count = try #require(item["frame_count"] as? Int)
            let ids = try #require(item["frame_ids"] as? [Int])
            #expect(ids == (try FrameSampling.random(seed: 42).select(frameCount: count).indices))
            let scores = try #require(item["scores"] as? [Double])
            #expect(scores.count == 3)
            #expect(abs(scores.reduce(0, +) - 1) < 1e-5)
            let top = try #require(item["top"] as? [[String: Any]])
            #expect(top.count == 3)
            #expect(top.compactMap { $0["index"] as? Int } == [0, 1, 2].sorted { scores[$0] > scores[$1] })
            for entry in top {
                let index = try #require(entry["index"] as? Int)
                #expect(entry["label"] as? String == ["running", "jumping", "swimming"][index])
                #expect(entry["prob"] as? Double == scores[index])
            }
            #expect((item["warnings"] as? [String]) == [])
        }
        #expect(results[1]["frame_count"] as? Int == 12)
        #expect(results[1]["frame_ids"] as? [Int] == expectedIds[0])
    }

    // MARK: exit codes

    @Test func missingVideoExitsOne() throws {
        let models = try CLI.tinyModelDirectory()
        defer { try? FileManager.default.removeItem(at: models) }
        let missing = "/nonexistent/clip-\(UUID().uuidString).gif"
        let result = try CLI.run(["--model-dir", models.path, "--offline", "-v", missing])
        #expect(result.status == 1)
        #expect(result.standardError.contains(missing))
        #expect(result.standardOutput.isEmpty)
    }

    @Test func corruptModelExitsOne() throws {
        let models = try CLI.tinyModelDirectory()
        defer { try? FileManager.default.removeItem(at: models) }
        let fusion = models.appendingPathComponent("vit-32-8f-fusion.onnx")
        try FileManager.default.removeItem(at: fusion)
        try Data("this is not a protobuf model".utf8).write(to: fusion)
        let result = try CLI.run(Self.classifyArguments(models, []))
        #expect(result.status == 1)
        #expect(result.standardError.contains("action-clip: error:"))
        #expect(result.standardError.contains("fusion"), "the error names the file: \(result.standardError)")
        #expect(result.standardOutput.isEmpty)
    }

    @Test func overLongLabelExitsOneNamingTheLabel() throws {
        let models = try CLI.tinyModelDirectory()
        defer { try? FileManager.default.removeItem(at: models) }
        let label = (0..<80).map { "w\($0)" }.joined(separator: " ")
        let result = try CLI.run(Self.classifyArguments(models, ["-t", "fine", "-t", label]))
        #expect(result.status == 1)
        #expect(result.standardError.contains("label '\(label)'"), "stderr: \(result.standardError)")
        #expect(result.standardError.components(separatedBy: "\n").filter { $0.contains("error:") }.count == 1)
    }

    @Test func unsupportedOperatorExitsOne() throws {
        let directory = try CLI.temporaryDirectory("unsupported")
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = directory.appendingPathComponent("fancy.onnx")
        try ProtobufWriter.singleNodeModel(opType: "FancyUnknownOp").write(to: model)
        let input = directory.appendingPathComponent("x.npy")
        try NPY.write(try Tensor([Float(1), 2], shape: [2]), to: input.path)
        let result = try CLI.run(["run", model.path, "--input", "x=\(input.path)", "--output-dir", directory.appendingPathComponent("out").path])
        #expect(result.status == 1)
        #expect(result.standardError.contains("FancyUnknownOp"), "stderr: \(result.standardError)")
        // The same file runs with a supported op, so the failure is the op and not the hand-made protobuf.
        try ProtobufWriter.singleNodeModel(opType: "Relu").write(to: model)
        let relu = try CLI.run(["run", model.path, "--input", "x=\(input.path)", "--output-dir", directory.appendingPathComponent("out").path])
        #expect(relu.status == 0, "stderr: \(relu.standardError)")
        let inspect = try CLI.run(["inspect", "--json", model.path])
        #expect(inspect.status == 0)
        try ProtobufWriter.singleNodeModel(opType: "FancyUnknownOp").write(to: model)
        let inspectUnsupported = try CLI.run(["inspect", "--json", model.path])
        let object = try #require(try CLI.json(inspectUnsupported.standardOutput) as? [String: Any])
        #expect(object["unsupported_op_types"] as? [String] == ["FancyUnknownOp"])
    }

    @Test(arguments: [["--top", "0"], ["--no-such-flag"], ["--sampling", "sideways"], ["--seed", "-1"],
                      ["--sampling", "center", "--seed", "3"], ["--threads", "0"]])
    func usageErrorsExitTwo(arguments: [String]) throws {
        let result = try CLI.run(["--model-dir", "/nonexistent", "--offline", "-v", CLI.sampleClip] + arguments)
        #expect(result.status == 2, "\(arguments): status \(result.status), stderr \(result.standardError)")
        #expect(!result.standardError.isEmpty)
        #expect(result.standardOutput.isEmpty)
    }

    /// `--precision bf16` where the CPU has AVX512-BF16 (and weights are packed): the image
    /// graph's features come out near the float32 ones (bfloat16 keeps 8 significant bits) but
    /// not equal to them, so the bfloat16 kernel really ran. Elsewhere: refused with exit code 2,
    /// one message naming the option, and no output written.
    @Test func bfloat16PrecisionRunsOrIsRefused() throws {
        let scratch = try CLI.temporaryDirectory("precision")
        defer { try? FileManager.default.removeItem(at: scratch) }
        var generator = SplitMix64(seed: 2026)
        let input = try Tensor(generator.floats(8 * 3 * 224 * 224, -2, 2), shape: [8, 3, 224, 224])
        let inputPath = scratch.appendingPathComponent("image.npy").path
        try NPY.write(input, to: inputPath)
        let model = CLI.tinyFixtures.appendingPathComponent("vit-32-8f-image_clip.onnx").path
        func run(_ precision: String) throws -> (CLI.Result, URL) {
            let output = scratch.appendingPathComponent(precision)
            let result = try CLI.run(["run", model, "--input", "image=\(inputPath)", "--fused", "--precision", precision,
                                      "--output-dir", output.path])
            return (result, output.appendingPathComponent("image_features.npy"))
        }
        let (bfloat16, bfloat16Features) = try run("bf16")
        let usable = CPUFeatures.avx512BFloat16 && ProcessInfo.processInfo.environment["ACTION_CLIP_PACK_WEIGHTS"] != "0"
        guard usable else {
            #expect(bfloat16.status == 2, "stderr: \(bfloat16.standardError)")
            #expect(bfloat16.standardError.contains("--precision bf16 needs"))
            #expect(!FileManager.default.fileExists(atPath: bfloat16Features.path))
            return
        }
        let (float32, float32Features) = try run("float32")
        for result in [bfloat16, float32] { #expect(result.status == 0, "stderr: \(result.standardError)") }
        let low = try NPY.read(path: bfloat16Features.path).toArray(Float.self)
        let full = try NPY.read(path: float32Features.path).toArray(Float.self)
        try #require(low.count == full.count && !full.isEmpty)
        let largest = full.map(abs).max() ?? 0
        let difference = zip(low, full).map { abs($0 - $1) }.max() ?? 0
        #expect(difference > 0, "bf16 gave float32's bits: the bfloat16 kernel did not run")
        #expect(difference <= 0.02 * largest, "bf16 features \(difference) from float32's (largest \(largest))")

        // The text-feature cache keeps the two precisions' features apart: a bf16 run after a
        // float32 one writes a second file, and a second bf16 run reads it and prints the same.
        let models = try CLI.tinyModelDirectory()
        defer { try? FileManager.default.removeItem(at: models) }
        let environment = ["XDG_CACHE_HOME": scratch.appendingPathComponent("cache-home").path]
        let cacheDirectory = scratch.appendingPathComponent("cache-home/action-clip").path
        let float32Run = try CLI.run(Self.classifyArguments(models, ["--precision", "float32"]), environment: environment)
        let bfloat16Run = try CLI.run(Self.classifyArguments(models, ["--precision", "bf16"]), environment: environment)
        let featureFiles = try FileManager.default.contentsOfDirectory(atPath: cacheDirectory).filter { $0.hasSuffix(".features") }
        #expect(featureFiles.count == 2, "\(featureFiles)")
        let again = try CLI.run(Self.classifyArguments(models, ["--precision", "bf16"]), environment: environment)
        for result in [float32Run, bfloat16Run, again] { #expect(result.status == 0, "stderr: \(result.standardError)") }
        #expect(again.standardOutput == bfloat16Run.standardOutput)
        #expect(bfloat16Run.standardOutput != float32Run.standardOutput)
    }

    // MARK: subcommands

    @Test func tokenizeKnownPrompt() throws {
        guard FileManager.default.fileExists(atPath: CLI.vocabulary.path) else {
            Issue.record("\(CLI.vocabulary.path) is missing: run Scripts/fetch-vocab.sh first")
            return
        }
        let result = try CLI.run(["tokenize", "--vocab", CLI.vocabulary.path, "a photo of action applauding"])
        #expect(result.status == 0, "stderr: \(result.standardError)")
        let expected = [49406, 320, 1125, 539, 1816, 24713, 796, 49407] + [Int](repeating: 0, count: 69)
        #expect(result.lines == [expected.map(String.init).joined(separator: " ")])
        let json = try CLI.run(["tokenize", "--vocab", CLI.vocabulary.path, "--json", "a photo of action applauding"])
        let items = try #require(try CLI.json(json.standardOutput) as? [[String: Any]])
        #expect(items.first?["ids"] as? [Int] == expected)
    }

    /// `bench --compare-ort --json` on the tiny models (ONNX Runtime from the project venv, which
    /// Scripts/setup.sh creates): every row has its samples; the ratio columns are what the
    /// samples say, recomputed here; a row that reuses another row's ONNX Runtime runs has no
    /// paired ratio or count of faster pairs; and no GFLOP/s is claimed for models smaller than the ailia ones.
    @Test func benchReportsRatiosFromItsOwnSamples() throws {
        let python = CLI.repositoryRoot.appendingPathComponent(".venv/bin/python").path
        try #require(FileManager.default.isExecutableFile(atPath: python), "\(python) is missing: run Scripts/setup.sh first")
        let models = try CLI.tinyModelDirectory()
        defer { try? FileManager.default.removeItem(at: models) }
        let result = try CLI.run(["bench", "--model-dir", models.path, "--offline", "--runs", "3", "--warmup", "0",
                                  "--threads", "2", "--compare-ort", "--json", "--video", CLI.sampleClip],
                                 in: CLI.repositoryRoot)
        #expect(result.status == 0, "stderr: \(result.standardError)")
        let report = try #require(try CLI.json(result.standardOutput) as? [String: Any])
        #expect(report["onnxruntime"] is String)
        let rows = try #require(report["rows"] as? [[String: Any]])
        let names = rows.compactMap { $0["name"] as? String }
        #expect(names.count == 9, "rows: \(names)")
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        for row in rows {
            let name = row["name"] as? String ?? "?"
            let times = try #require(row["times_ms"] as? [Double], "\(name)")
            #expect(times.count == 3 && times.allSatisfy { $0 > 0 }, "\(name): \(times)")
            #expect(row["gflops"] == nil, "\(name) claims a FLOP rate for the tiny models")
            guard let ortTimes = row["ort_times_ms"] as? [Double] else { continue }
            let ratio = try #require(row["ratio_to_ort"] as? Double, "\(name)")
            #expect(abs(ratio - median(times) / median(ortTimes)) <= 1e-9 * ratio, "\(name)")
            if name.hasPrefix("text full") {
                #expect(row["paired_ratio_to_ort"] == nil, "\(name) reuses the true-length row's ONNX Runtime runs")
                #expect(row["faster_pairs"] == nil, "\(name) has no pairs")
            } else {
                let paired = try #require(row["paired_ratio_to_ort"] as? Double, "\(name) has no paired ratio")
                let expected = median(zip(times, ortTimes).map { $0 / $1 })
                #expect(abs(paired - expected) <= 1e-9 * expected, "\(name): \(paired) vs \(expected)")
                let faster = try #require(row["faster_pairs"] as? Double, "\(name) has no count of faster pairs")
                #expect(faster == Double(zip(times, ortTimes).filter { $0 < $1 }.count), "\(name): \(faster)")
            }
        }
        #expect(rows.filter { $0["paired_ratio_to_ort"] != nil }.count == 3, "image, fusion and text true length")
    }

    @Test func benchRejectsAMissingClipBeforeTiming() throws {
        let result = try CLI.run(["bench", "--model-dir", "/nonexistent", "--offline", "--video", "/nonexistent/clip.gif"])
        #expect(result.status == 1)
        #expect(result.standardError.contains("/nonexistent/clip.gif: file not found"), "stderr: \(result.standardError)")
    }

    @Test func preprocessWritesTheNetworkInput() throws {
        let directory = try CLI.temporaryDirectory("preprocess")
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("input.npy").path
        let result = try CLI.run(["preprocess", CLI.sampleClip, "--seed", "1", "--output", output])
        #expect(result.status == 0, "stderr: \(result.standardError)")
        let tensor = try NPY.read(path: output)
        #expect(tensor.dataType == .float32)
        #expect(tensor.shape == [8, 3, 224, 224])
        let frameCount = try VideoReader.open(path: CLI.sampleClip).frameCount
        let ids = try FrameSampling.random(seed: 1).select(frameCount: frameCount).indices
        #expect(result.lines == ["frame_ids = \(ids.map(String.init).joined(separator: " ")) (of \(frameCount) frames)"])
        // The CLI writes exactly what the library computes.
        let expected = try VideoPreprocessor().prepare(path: CLI.sampleClip, sampling: .random(seed: 1), channelOrder: .rgb)
        #expect(try tensor.toArray(Float.self) == expected.input.toArray(Float.self))
        let centre = try CLI.run(["preprocess", CLI.sampleClip, "--sampling", "center", "--bgr", "--output", output])
        #expect(centre.status == 0)
        let centreIds = try FrameSampling.center.select(frameCount: frameCount).indices
        #expect(centre.lines.first?.hasPrefix("frame_ids = \(centreIds.map(String.init).joined(separator: " "))") == true)
    }

    @Test func inspectJSON() throws {
        let model = CLI.tinyFixtures.appendingPathComponent("vit-32-8f-image_clip.onnx").path
        let result = try CLI.run(["inspect", "--json", model])
        #expect(result.status == 0, "stderr: \(result.standardError)")
        let object = try #require(try CLI.json(result.standardOutput) as? [String: Any])
        #expect(object["file"] as? String == model)
        #expect(object["ir_version"] as? Int == 5)
        #expect((object["opset_imports"] as? [String: Int])?["ai.onnx"] == 10)
        #expect(object["node_count"] as? Int == 237)
        #expect(object["initializer_count"] as? Int == 32)
        #expect(object["unsupported_op_types"] as? [String] == [])
        let inputs = try #require(object["inputs"] as? [[String: Any]])
        #expect(inputs.first?["name"] as? String == "image")
        #expect(inputs.first?["dtype"] as? String == "float32")
        #expect(inputs.first?["shape"] as? [Int] == [8, 3, 224, 224])
        let outputs = try #require(object["outputs"] as? [[String: Any]])
        #expect(outputs.first?["name"] as? String == "image_features")
        let histogram = try #require(object["op_types"] as? [String: Int])
        #expect(histogram.values.reduce(0, +) == 237)
    }

    @Test func runThenValidateRoundTrip() throws {
        let directory = try CLI.temporaryDirectory("roundtrip")
        defer { try? FileManager.default.removeItem(at: directory) }
        let dump = CLI.tinyFixtures.appendingPathComponent("dump-text")
        let model = CLI.tinyFixtures.appendingPathComponent("vit-32-8f-text_clip.onnx").path
        let outputs = directory.appendingPathComponent("outputs")
        let run = try CLI.run(["run", model, "--input", "text=\(dump.appendingPathComponent("inputs/text.npy").path)",
                               "--output-dir", outputs.path])
        #expect(run.status == 0, "stderr: \(run.standardError)")
        let produced = try NPY.read(path: outputs.appendingPathComponent("text_features.npy").path)
        #expect(produced.shape == [3, 64])

        // A dump made of run's own output validates with zero error ...
        let ownDump = directory.appendingPathComponent("dump")
        try FileManager.default.createDirectory(at: ownDump.appendingPathComponent("inputs"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: dump.appendingPathComponent("manifest.json"), to: ownDump.appendingPathComponent("manifest.json"))
        try FileManager.default.copyItem(at: dump.appendingPathComponent("inputs/text.npy"), to: ownDump.appendingPathComponent("inputs/text.npy"))
        try FileManager.default.copyItem(at: outputs, to: ownDump.appendingPathComponent("outputs"))
        let validate = try CLI.run(["validate", model, "--reference", ownDump.path, "--rtol", "0", "--atol", "0"])
        #expect(validate.status == 0, "stdout: \(validate.standardOutput) stderr: \(validate.standardError)")
        #expect(validate.standardOutput.contains("max_abs 0.000e+00"))
        // ... and against ONNX Runtime's dump within float32 noise.
        let reference = try CLI.run(["validate", model, "--reference", dump.path, "--rtol", "1e-5"])
        #expect(reference.status == 0, "stdout: \(reference.standardOutput)")

        // A tampered reference fails with exit code 1.
        var values = try produced.toArray(Float.self)
        values[5] += 0.5
        try NPY.write(try Tensor(values, shape: produced.shape), to: ownDump.appendingPathComponent("outputs/text_features.npy").path)
        let tampered = try CLI.run(["validate", model, "--reference", ownDump.path])
        #expect(tampered.status == 1)
        #expect(tampered.standardOutput.contains("FAIL"))
    }

    @Test func failedRunLeavesNoHalfWrittenFile() throws {
        let directory = try CLI.temporaryDirectory("failedrun")
        defer { try? FileManager.default.removeItem(at: directory) }
        // Relu -> Relu -> Gather: with an out-of-range index the Gather fails after --all-nodes has
        // written the outputs of both Relu nodes.
        let model = directory.appendingPathComponent("late-failure.onnx")
        try ProtobufWriter.model(
            nodes: [.init(opType: "Relu", inputs: ["x"], outputs: ["a"]),
                    .init(opType: "Relu", inputs: ["a"], outputs: ["b"]),
                    .init(opType: "Gather", inputs: ["b", "i"], outputs: ["y"])],
            inputs: [.init(name: "x", elementType: 1, dims: [4]), .init(name: "i", elementType: 7, dims: [1])],
            outputs: [.init(name: "y", elementType: 1, dims: [1])]).write(to: model)
        let x = directory.appendingPathComponent("x.npy"), good = directory.appendingPathComponent("good.npy")
        let bad = directory.appendingPathComponent("bad.npy")
        try NPY.write(try Tensor([Float(-1), 2, -3, 4], shape: [4]), to: x.path)
        try NPY.write(try Tensor([Int64(3)], shape: [1]), to: good.path)
        try NPY.write(try Tensor([Int64(9)], shape: [1]), to: bad.path)

        let fine = directory.appendingPathComponent("fine")
        let success = try CLI.run(["run", model.path, "--input", "x=\(x.path)", "--input", "i=\(good.path)",
                                   "--output-dir", fine.path, "--all-nodes"])
        #expect(success.status == 0, "stderr: \(success.standardError)")
        #expect(try NPY.read(path: fine.appendingPathComponent("y.npy").path).toArray(Float.self) == [4])

        let outputs = directory.appendingPathComponent("out")
        let result = try CLI.run(["run", model.path, "--input", "x=\(x.path)", "--input", "i=\(bad.path)",
                                  "--output-dir", outputs.path, "--all-nodes"])
        #expect(result.status == 1, "stderr: \(result.standardError)")
        #expect(result.standardError.contains("action-clip: error:"))
        #expect(result.standardError.contains("Gather"), "stderr: \(result.standardError)")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: outputs.path)) ?? []).sorted()
        #expect(names == ["a.npy", "b.npy"], "only the complete outputs of the nodes that ran: \(names)")
        for name in names {
            let tensor = try NPY.read(path: outputs.appendingPathComponent(name).path)
            #expect(try tensor.toArray(Float.self) == [0, 2, 0, 4], "\(name) is complete")
        }

        // Wrong input shape: fails before any node runs, so nothing at all is written.
        let text = CLI.tinyFixtures.appendingPathComponent("vit-32-8f-text_clip.onnx").path
        let shapeOutputs = directory.appendingPathComponent("out-shape")
        let wrong = directory.appendingPathComponent("wrong.npy")
        try NPY.write(try Tensor([Float](repeating: 0, count: 6), shape: [2, 3]), to: wrong.path)
        let shape = try CLI.run(["run", text, "--input", "text=\(wrong.path)", "--output-dir", shapeOutputs.path])
        #expect(shape.status == 1)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: shapeOutputs.path)) ?? []).isEmpty)
    }

    @Test func vocabularyIsPresentForTheseTests() {
        // The tiny-model tests need the vocabulary; say how to get it rather than skipping.
        #expect(FileManager.default.fileExists(atPath: CLI.vocabulary.path),
                "\(CLI.vocabulary.path) is missing: run Scripts/fetch-vocab.sh")
    }
}
