#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ONNXProto
import Tensor

/// Reads ONNX model files into `ONNXModel` values.
///
/// The file is memory-mapped read-only and parsed by protobuf-c; every field is converted into
/// Swift values, weights are taken over from protobuf-c without a second copy (or mapped from
/// external data files), and the graph is checked for structural errors before it is returned.
public enum ONNXLoader {
    /// IR versions this loader accepts (the ActionCLIP files are IR 5; 13 is the newest this proto describes).
    public static let supportedIRVersions: ClosedRange<Int64> = 3...13
    /// Default-domain opsets whose operator semantics the engine knows.
    public static let supportedOpsets: ClosedRange<Int64> = 1...21

    /// Loads the model at `path`. External data files are resolved relative to the file's directory.
    /// `useWeightIndex` false parses the whole file with protobuf-c (see `parse`).
    /// `weightCache` says where aligned copies of misaligned weights are kept between runs
    /// (`AlignedWeightCache`); the default follows the environment. `padMatrixRows` lets the
    /// loader store MatMul weights with padded rows where it writes them anyway (`MatrixRowPadding`),
    /// `packMatrices` in packed strips (`WeightPacking`), which takes precedence where both apply.
    public static func load(contentsOf path: String, useWeightIndex: Bool = weightIndexEnabled,
                            weightCache: WeightCacheSettings = .fromEnvironment(),
                            padMatrixRows: Bool = MatrixRowPadding.enabledByEnvironment,
                            packMatrices: Bool = WeightPacking.enabledByEnvironment) throws(ONNXLoadError) -> ONNXModel {
        let file: MappedFile
        do {
            // Not populated yet: `parse` does it unless a trusted weight cache means most of the
            // file (the raw_data the cache holds aligned) is never read.
            file = try MappedFile.map(path, populate: false)
        } catch {
            switch error {
            case .notFound: throw .fileNotFound(path: path)
            case .isDirectory: throw .isDirectory(path: path)
            case .system(let reason): throw .unreadable(path: path, reason: reason)
            }
        }
        guard let base = file.base, file.size > 0 else { throw .emptyFile(path: path) }
        let context = LoadContext(sourceName: path, baseDirectory: directory(of: path), padMatrixRows: padMatrixRows,
                                  packMatrices: packMatrices)
        // Weights whose raw_data is aligned keep `file` alive (they point into it); when none do,
        // the mapping is released as soon as this returns.
        return try parse(UnsafeRawBufferPointer(start: base, count: file.size), context: context, mapping: file,
                         useWeightIndex: useWeightIndex, weightCache: weightCache)
    }

    /// Loads a model from bytes in memory. `baseDirectory` is where external data files live;
    /// nil means the model must not use external data.
    /// Tensors never point into `bytes`, which the caller may free afterwards.
    public static func load(bytes: UnsafeRawBufferPointer, baseDirectory: String?, useWeightIndex: Bool = weightIndexEnabled,
                            padMatrixRows: Bool = MatrixRowPadding.enabledByEnvironment,
                            packMatrices: Bool = WeightPacking.enabledByEnvironment) throws(ONNXLoadError) -> ONNXModel {
        let context = LoadContext(sourceName: "<memory>", baseDirectory: baseDirectory, padMatrixRows: padMatrixRows,
                                  packMatrices: packMatrices)
        guard bytes.count > 0 else { throw .emptyFile(path: context.sourceName) }
        return try parse(bytes, context: context, mapping: nil, useWeightIndex: useWeightIndex, weightCache: .disabled)
    }

    /// Parses `bytes` (a file's mapping when `mapping` is given). Initializer raw_data is located
    /// by `WeightIndex` and read where it lies, so protobuf-c only parses the rest; when the index
    /// cannot be built, or `ACTION_CLIP_WEIGHT_INDEX=0`, protobuf-c parses everything.
    private static func parse(_ bytes: UnsafeRawBufferPointer, context: LoadContext, mapping: MappedFile?,
                              useWeightIndex: Bool, weightCache: WeightCacheSettings) throws(ONNXLoadError) -> ONNXModel {
        let index = useWeightIndex ? WeightIndex.build(bytes) : nil
        let unpacked: UnsafeMutablePointer<Onnx__ModelProto>?
        // The aligned weight cache is for mapped files with enough weights to be worth it.
        var cacheTarget: (directory: String, key: UInt64)?
        if let index, mapping != nil, let directory = weightCache.directory,
           index.rawData.reduce(0, { $0 + ($1?.count ?? 0) }) >= weightCache.minimumBytes {
            cacheTarget = (directory, AlignedWeightCache.key(skeleton: index.skeleton, ranges: index.rawData, fileSize: bytes.count,
                                                             paddedRows: context.padMatrixRows,
                                                             packedStrips: context.packMatrices))
        }
        if let index {
            let cache = cacheTarget.flatMap { target in
                AlignedWeightCache.load(path: AlignedWeightCache.path(directory: target.directory, key: target.key),
                                        key: target.key, ranges: index.rawData, modelSize: bytes.count,
                                        model: weightCache.trustsStamps ? mapping : nil)
            }
            // Every byte is read (parsed or compared with the cache) unless the cache is trusted.
            if cache?.trusted != true { mapping?.populateAll() }
            context.mappedWeights = MappedWeights(bytes: bytes, ranges: index.rawData, mapping: mapping, cache: cache,
                                                  cacheWritable: cacheTarget != nil)
            unpacked = index.skeleton.withUnsafeBufferPointer { skeleton in
                skeleton.baseAddress.flatMap { onnx__model_proto__unpack(nil, skeleton.count, $0) }
            }
        } else if let start = bytes.baseAddress {
            mapping?.populateAll()
            unpacked = onnx__model_proto__unpack(nil, bytes.count, start.assumingMemoryBound(to: UInt8.self))
        } else {
            unpacked = nil
        }
        guard let message = unpacked else { throw .notProtobuf(path: context.sourceName) }
        defer { onnx__model_proto__free_unpacked(message, nil) }
        let model = try ModelConverter(context: context).convert(message)
        // Weights that had to be copied go to the cache, so the next load maps them instead.
        if let target = cacheTarget, let weights = context.mappedWeights, !weights.copied.isEmpty {
            AlignedWeightCache.write(directory: target.directory, key: target.key, model: bytes, ranges: weights.ranges,
                                     placements: weights.placements)
            for index in weights.copied { weights.region(index).map(MemoryPages.release) }
        } else if weightCache.trustsStamps, let mapping, let cache = context.mappedWeights?.cache, !cache.trusted,
                  cache.allVerified {
            // Every cached tensor equalled the model's: the next load may skip the comparison.
            WeightCacheStamp.record(path: WeightCacheStamp.path(cachePath: cache.mapping.path), model: mapping,
                                    cache: cache.mapping, now: WeightCacheStamp.now(), settleSeconds: weightCache.settleSeconds)
        }
        return model
    }

    /// `ACTION_CLIP_WEIGHT_INDEX=0` makes protobuf-c copy every raw_data block, as before the index
    /// existed (for A/B measurements and as an escape hatch).
    public static var weightIndexEnabled: Bool {
        guard let value = getenv("ACTION_CLIP_WEIGHT_INDEX") else { return true }
        return String(cString: value) != "0"
    }

    /// The directory part of a path ("." for a bare file name), for resolving external data.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }
}

/// Turns an unpacked protobuf-c `ModelProto` into Swift values.
struct ModelConverter {
    let context: LoadContext

    func convert(_ message: UnsafeMutablePointer<Onnx__ModelProto>) throws(ONNXLoadError) -> ONNXModel {
        let model = message.pointee
        guard let graphPointer = model.graph else { throw .missingGraph(path: context.sourceName) }

        let irVersion = model.has_ir_version != 0 ? model.ir_version : 0
        guard ONNXLoader.supportedIRVersions.contains(irVersion) else {
            throw .unsupportedIRVersion(irVersion, supported: ONNXLoader.supportedIRVersions)
        }

        var opsets: [String: Int64] = [:]
        for entry in cArray(model.opset_import, model.n_opset_import) {
            guard let entry else { continue }
            var domain = cString(entry.pointee.domain)
            if domain == "ai.onnx" { domain = "" }
            let version = entry.pointee.has_version != 0 ? entry.pointee.version : 0
            if domain.isEmpty, let previous = opsets[domain], previous != version {
                throw .conflictingOpsets(previous, version)
            }
            opsets[domain] = version
        }
        guard let defaultOpset = opsets[""] else { throw .missingDefaultOpset }
        guard ONNXLoader.supportedOpsets.contains(defaultOpset) else {
            throw .unsupportedOpset(defaultOpset, supported: ONNXLoader.supportedOpsets)
        }

        let graph = try convertGraph(graphPointer)
        try GraphValidator.validate(graph)
        var metadata: [String: String] = [:]
        for index in 0..<model.n_metadata_props {
            guard let entry = model.metadata_props[index]?.pointee else { continue }
            metadata[cString(entry.key)] = cString(entry.value)
        }
        return ONNXModel(irVersion: irVersion, opsetImports: opsets, producerName: cString(model.producer_name),
                         producerVersion: cString(model.producer_version), metadata: metadata, graph: graph)
    }

    private func convertGraph(_ pointer: UnsafeMutablePointer<Onnx__GraphProto>) throws(ONNXLoadError) -> ONNXGraph {
        let graph = pointer.pointee

        // Nodes and outputs first: which initializers are only MatMul weights decides their layout.
        let outputs = try convertValueInfos(graph.output, graph.n_output, role: "output")
        var nodes: [ONNXNode] = []
        nodes.reserveCapacity(graph.n_node)
        for (index, nodePointer) in cArray(graph.node, graph.n_node).enumerated() {
            guard let nodePointer else { continue }
            nodes.append(try convertNode(nodePointer, index: index))
        }
        let initializerNameSet = Set(cArray(graph.initializer, graph.n_initializer).map { cString($0?.pointee.name) })
        let matrixOperands = context.padMatrixRows || context.packMatrices
            ? MatrixRowPadding.matrixOperands(nodes: nodes, graphOutputs: outputs.map(\.name), initializers: initializerNameSet)
            : []
        let patchEmbeddings = context.packMatrices
            ? WeightPacking.patchEmbeddingOperands(nodes: nodes, graphOutputs: outputs.map(\.name), initializers: initializerNameSet)
            : [:]

        var initializers: [String: Tensor] = [:]
        var initializerNames: [String] = []
        for (index, tensorPointer) in cArray(graph.initializer, graph.n_initializer).enumerated() {
            guard let tensorPointer else { continue }
            let name = cString(tensorPointer.pointee.name)
            guard !name.isEmpty else {
                throw .invalidTensor(tensor: "initializer #\(index)", problem: "has no name")
            }
            guard initializers[name] == nil else {
                throw .duplicateValue(name: name, first: "an initializer", second: "another initializer")
            }
            initializers[name] = try context.decodeTensor(tensorPointer, subject: "initializer '\(name)'",
                                                          initializerIndex: index, matrixOperand: matrixOperands.contains(name),
                                                          patchStrides: patchEmbeddings[name])
            initializerNames.append(name)
        }

        // Initializers listed as inputs are defaults a caller could override; this engine never
        // overrides weights, so they stay initializers only.
        let inputs = try convertValueInfos(graph.input, graph.n_input, role: "input")
            .filter { initializers[$0.name] == nil }
        let valueInfo = try convertValueInfos(graph.value_info, graph.n_value_info, role: "value_info")
        return ONNXGraph(name: cString(graph.name), inputs: inputs, outputs: outputs, valueInfo: valueInfo,
                         nodes: nodes, initializers: initializers, initializerNames: initializerNames)
    }

    private func convertValueInfos(_ base: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__ValueInfoProto>?>?, _ count: Int,
                                   role: String) throws(ONNXLoadError) -> [ValueInfo] {
        var result: [ValueInfo] = []
        for (index, pointer) in cArray(base, count).enumerated() {
            guard let pointer else { continue }
            let name = cString(pointer.pointee.name)
            guard !name.isEmpty else { throw .invalidValueInfo(name: "#\(index)", problem: "graph \(role) has no name") }
            var elementType: Int32 = 0
            var shape: [ValueInfo.Dimension]?
            if let type = pointer.pointee.type,
               type.pointee.value_case.rawValue == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE.rawValue,
               let tensorType = type.pointee.tensor_type {
                elementType = tensorType.pointee.has_elem_type != 0 ? tensorType.pointee.elem_type : 0
                if let shapeProto = tensorType.pointee.shape {
                    var dimensions: [ValueInfo.Dimension] = []
                    for dimension in cArray(shapeProto.pointee.dim, shapeProto.pointee.n_dim) {
                        guard let dimension else { dimensions.append(.unknown); continue }
                        switch dimension.pointee.value_case.rawValue {
                        case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE.rawValue:
                            let value = dimension.pointee.dim_value
                            guard value >= 0 else {
                                throw .invalidValueInfo(name: name, problem: "negative dimension \(value)")
                            }
                            dimensions.append(.fixed(Int(value)))
                        case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM.rawValue:
                            let parameter = cString(dimension.pointee.dim_param)
                            dimensions.append(parameter.isEmpty ? .unknown : .symbolic(parameter))
                        default:
                            dimensions.append(.unknown)
                        }
                    }
                    shape = dimensions
                }
            }
            result.append(ValueInfo(name: name, elementTypeCode: elementType, shape: shape))
        }
        return result
    }

    private func convertNode(_ pointer: UnsafeMutablePointer<Onnx__NodeProto>, index: Int) throws(ONNXLoadError) -> ONNXNode {
        let proto = pointer.pointee
        let name = cString(proto.name)
        let opType = cString(proto.op_type)
        var domain = cString(proto.domain)
        if domain == "ai.onnx" { domain = "" }
        let inputs = cArray(proto.input, proto.n_input).map { cString($0) }
        let outputs = cArray(proto.output, proto.n_output).map { cString($0) }
        var node = ONNXNode(name: name, opType: opType, domain: domain, inputs: inputs, outputs: outputs, attributes: [:])
        guard !opType.isEmpty else {
            let label = name.isEmpty ? "#\(index) (-> \(outputs.first ?? "?"))" : "'\(name)'"
            throw .invalidNode(node: label, problem: "empty op_type")
        }
        for attributePointer in cArray(proto.attribute, proto.n_attribute) {
            guard let attributePointer else { continue }
            let attributeName = cString(attributePointer.pointee.name)
            guard !attributeName.isEmpty else { throw .invalidNode(node: node.displayName, problem: "attribute without a name") }
            guard node.attributes[attributeName] == nil else {
                throw .invalidNode(node: node.displayName, problem: "attribute '\(attributeName)' appears twice")
            }
            node.attributes[attributeName] = try convertAttribute(
                attributePointer, subject: "node \(node.displayName) attribute '\(attributeName)'")
        }
        return node
    }

    private func convertAttribute(_ pointer: UnsafeMutablePointer<Onnx__AttributeProto>, subject: String) throws(ONNXLoadError) -> Attribute {
        let proto = pointer.pointee
        switch attributeKind(proto) {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT.rawValue:
            return .float(proto.f)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT.rawValue:
            return .int(proto.i)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING.rawValue:
            return .string(Array(UnsafeRawBufferPointer(start: proto.s.data, count: proto.s.data == nil ? 0 : proto.s.len)))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR.rawValue:
            guard let tensor = proto.t else { throw .invalidTensor(tensor: subject, problem: "TENSOR attribute without a tensor") }
            return .tensor(try context.decodeTensor(tensor, subject: subject))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS.rawValue:
            return .floats(Array(cArray(proto.floats, proto.n_floats)))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS.rawValue:
            return .ints(Array(cArray(proto.ints, proto.n_ints)))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS.rawValue:
            return .strings(cArray(proto.strings, proto.n_strings).map { value in
                Array(UnsafeRawBufferPointer(start: value.data, count: value.data == nil ? 0 : value.len))
            })
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH.rawValue: return .unsupported(kind: "GRAPH")
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS.rawValue: return .unsupported(kind: "GRAPHS")
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS.rawValue: return .unsupported(kind: "TENSORS")
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR.rawValue: return .unsupported(kind: "SPARSE_TENSOR")
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS.rawValue: return .unsupported(kind: "SPARSE_TENSORS")
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO.rawValue: return .unsupported(kind: "TYPE_PROTO")
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS.rawValue: return .unsupported(kind: "TYPE_PROTOS")
        case let other: return .unsupported(kind: "attribute type \(other)")
        }
    }

    /// The attribute's declared type; IR versions before 2 had no `type` field, so then the
    /// kind is inferred from which value field is set.
    private func attributeKind(_ proto: Onnx__AttributeProto) -> UInt32 {
        if proto.has_type != 0 { return proto.type.rawValue }
        if proto.has_f != 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT.rawValue }
        if proto.has_i != 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT.rawValue }
        if proto.has_s != 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING.rawValue }
        if proto.t != nil { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR.rawValue }
        if proto.g != nil { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH.rawValue }
        if proto.n_floats > 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS.rawValue }
        if proto.n_ints > 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS.rawValue }
        if proto.n_strings > 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS.rawValue }
        return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED.rawValue
    }
}
