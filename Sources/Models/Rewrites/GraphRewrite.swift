import Foundation
import ONNXLoader

/// A rule that replaces a pattern of nodes by an equivalent, cheaper form before the graph is
/// compiled (load → rewrite → compile → run).
///
/// A rewrite checks its preconditions on the loaded graph (op types, attributes, constant values
/// such as epsilons) and leaves any non-matching place untouched, so a graph from another
/// exporter still runs, only slower. Each rule has an equivalence test against the unrewritten
/// graph and can be switched off by name.
public protocol GraphRewrite: Sendable {
    /// Short lowercase name used by the switches and in reports ("layernorm", "attention", ...).
    var name: String { get }

    /// Rewrites every match in `graph` and returns how many places were rewritten.
    func apply(to graph: inout ONNXGraph, model: ONNXModel) throws -> Int
}

/// Which rewrites run. From the environment:
/// - `ACTION_CLIP_FUSE=0` turns every rewrite off (the graph runs exactly as exported);
/// - `ACTION_CLIP_DISABLE_REWRITES=name,name` turns off the named ones.
public struct RewriteOptions: Sendable, Equatable {
    public var enabled: Bool
    public var disabled: Set<String>

    /// All rewrites when `enabled`, except those named in `disabled`.
    public init(enabled: Bool = true, disabled: Set<String> = []) {
        self.enabled = enabled
        self.disabled = disabled
    }

    /// Every rewrite off.
    public static let none = RewriteOptions(enabled: false)

    /// Reads `ACTION_CLIP_FUSE` and `ACTION_CLIP_DISABLE_REWRITES` (see the type's description).
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> RewriteOptions {
        let enabled = environment["ACTION_CLIP_FUSE"].map { $0 != "0" } ?? true
        let disabled = Set((environment["ACTION_CLIP_DISABLE_REWRITES"] ?? "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty })
        return RewriteOptions(enabled: enabled, disabled: disabled)
    }

    /// Whether `rewrite` runs under these options.
    public func allows(_ rewrite: any GraphRewrite) -> Bool { enabled && !disabled.contains(rewrite.name) }
}

/// Runs the standard rewrites in order.
public enum RewritePipeline {
    /// The rules applied by default, in the order they run. Attention goes first (it consumes the
    /// projection MatMul+Add pairs), QuickGELU before matmul-bias (which absorbs it), select-rows
    /// last (it narrows the fused nodes).
    public static let standard: [any GraphRewrite] = [
        AttentionRewrite(), LayerNormRewrite(), QuickGELURewrite(), MatMulBiasRewrite(), SelectRowsRewrite(),
    ]

    /// The standard rules with `EOTPositionRewrite(selection:)` before `select-rows`, for a text
    /// graph whose input is known to have its EOT tokens where `selection` says (see that rule);
    /// the standard rules when `selection` is nil.
    public static func rules(eot selection: EOTPositionRewrite.Selection?) -> [any GraphRewrite] {
        guard let selection else { return standard }
        var rules = standard
        let selectRows = rules.firstIndex { $0 is SelectRowsRewrite } ?? rules.endIndex
        rules.insert(EOTPositionRewrite(selection: selection), at: selectRows)
        return rules
    }

    /// The graph after every allowed rewrite, and how many places each one changed.
    public static func rewrite(_ model: ONNXModel, options: RewriteOptions,
                               rules: [any GraphRewrite] = standard) throws -> (graph: ONNXGraph, applied: [(name: String, count: Int)]) {
        var graph = model.graph
        var applied: [(name: String, count: Int)] = []
        for rule in rules where options.allows(rule) {
            applied.append((rule.name, try rule.apply(to: &graph, model: model)))
        }
        return (graph, applied)
    }
}

extension GraphProgram {
    /// Rewrites `model` with `rules` as `options` allow, then compiles it, with shape caching when the
    /// `shapecache` switch is on (see `ShapeCache`).
    public convenience init(model: ONNXModel, options: RewriteOptions,
                            rules: [any GraphRewrite] = RewritePipeline.standard) throws {
        let rewritten = try RewritePipeline.rewrite(model, options: options, rules: rules).graph
        try self.init(model: model, graph: rewritten, shapeCaching: options.allows(name: "shapecache"))
    }
}
