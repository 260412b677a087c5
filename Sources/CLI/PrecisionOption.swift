import ArgumentParser
import ONNXLoader
import Tensor

extension GEMMPrecision: ExpressibleByArgument {}

/// `--precision`: the arithmetic of the weight products, shared by every command that runs graphs.
struct PrecisionOption: ParsableArguments {
    @Option(help: ArgumentHelp("""
        Arithmetic of the weight products: float32 (default) or bf16 (weights and activations \
        rounded to bfloat16, sums in float32; needs AVX512-BF16; faster, less accurate: see \
        docs/PERFORMANCE.md).
        """, valueName: "float32|bf16"))
    var precision: GEMMPrecision = .float32

    func validate() throws {
        guard precision == .bfloat16 else { return }
        // The bfloat16 product runs on packed weights only, and only its AVX512-BF16 kernel is
        // fast enough to be worth asking for; refusing beats a silently float32 or crawling run.
        guard CPUFeatures.avx512 else {
            throw ValidationError("--precision bf16 needs AVX-512, which this CPU lacks or ACTION_CLIP_AVX512=0 turns off")
        }
        guard CPUFeatures.avx512BFloat16 else {
            throw ValidationError("--precision bf16 needs a CPU with AVX512-BF16 (AMD Zen 4 or later, Intel Cooper Lake or Sapphire Rapids and later)")
        }
        guard WeightPacking.enabledByEnvironment else {
            throw ValidationError("--precision bf16 needs packed weights, which ACTION_CLIP_PACK_WEIGHTS=0 turns off")
        }
    }

    /// Sets the process-wide precision; call before loading or running anything.
    func apply() {
        PackedGEMM.precision = precision
    }
}
