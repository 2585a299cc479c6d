import Foundation

/// Reads the few protobuf request bodies kubectl sends (`auth can-i`, `create configmap|secret`):
/// the `k8s\0` envelope and the fields of those kinds, turned into the JSON objects they stand for.
/// Answers are always JSON, which kubectl accepts (it decodes by the response's Content-Type).
enum Protobuf {
    indirect enum Field {
        case string(String)
        case int(String)
        case bool(String)
        case message(String, [Int: Field])
        case stringMap(String)
        case bytesMap(String)
        case strings(String)
        case messages(String, [Int: Field])
    }

    static let objectMeta: [Int: Field] = [
        1: .string("name"), 2: .string("generateName"), 3: .string("namespace"), 11: .stringMap("labels"),
        12: .stringMap("annotations"), 14: .strings("finalizers"),
    ]

    static let policyRule: [Int: Field] = [
        1: .strings("verbs"), 2: .strings("apiGroups"), 3: .strings("resources"), 4: .strings("resourceNames"),
        5: .strings("nonResourceURLs"),
    ]
    static let subject: [Int: Field] = [1: .string("kind"), 2: .string("apiGroup"), 3: .string("name"), 4: .string("namespace")]
    static let roleRef: [Int: Field] = [1: .string("apiGroup"), 2: .string("kind"), 3: .string("name")]

    static let schemas: [String: [Int: Field]] = [
        "SelfSubjectAccessReview": [
            1: .message("metadata", objectMeta),
            2: .message(
                "spec",
                [
                    1: .message(
                        "resourceAttributes",
                        [
                            1: .string("namespace"), 2: .string("verb"), 3: .string("group"), 4: .string("version"),
                            5: .string("resource"), 6: .string("subresource"), 7: .string("name"),
                        ]),
                    2: .message("nonResourceAttributes", [1: .string("path"), 2: .string("verb")]),
                ]),
        ],
        "Namespace": [1: .message("metadata", objectMeta), 2: .message("spec", [1: .strings("finalizers")])],
        "ServiceAccount": [1: .message("metadata", objectMeta)],
        "Role": [1: .message("metadata", objectMeta), 2: .messages("rules", policyRule)],
        "ClusterRole": [1: .message("metadata", objectMeta), 2: .messages("rules", policyRule)],
        "RoleBinding": [
            1: .message("metadata", objectMeta), 2: .messages("subjects", subject), 3: .message("roleRef", roleRef),
        ],
        "ClusterRoleBinding": [
            1: .message("metadata", objectMeta), 2: .messages("subjects", subject), 3: .message("roleRef", roleRef),
        ],
        "SelfSubjectRulesReview": [1: .message("metadata", objectMeta), 2: .message("spec", [1: .string("namespace")])],
        "ConfigMap": [1: .message("metadata", objectMeta), 2: .stringMap("data"), 3: .bytesMap("binaryData"), 4: .bool("immutable")],
        "Secret": [
            1: .message("metadata", objectMeta), 2: .bytesMap("data"), 3: .string("type"), 4: .stringMap("stringData"),
            5: .bool("immutable"),
        ],
    ]

    struct Malformed: Error {}

    /// The object a protobuf body holds, or nil if its kind is not one kube-sim reads.
    static func decode(_ bytes: [UInt8]) throws -> JSON? {
        guard bytes.count >= 4, Array(bytes[0..<4]) == [0x6B, 0x38, 0x73, 0x00] else { throw Malformed() }
        var reader = Reader(bytes: bytes, index: 4)
        var apiVersion = ""
        var kind = ""
        var raw: [UInt8] = []
        while let (number, wire) = try reader.tag() {
            switch (number, wire) {
            case (1, 2):
                var meta = Reader(bytes: try reader.lengthDelimited(), index: 0)
                while let (field, metaWire) = try meta.tag() {
                    if metaWire == 2 {
                        let text = String(decoding: try meta.lengthDelimited(), as: UTF8.self)
                        if field == 1 { apiVersion = text } else if field == 2 { kind = text }
                    } else {
                        try meta.skip(metaWire)
                    }
                }
            case (2, 2): raw = try reader.lengthDelimited()
            default: try reader.skip(wire)
            }
        }
        guard let schema = schemas[kind] else { return nil }
        var object = try message(raw, schema)
        object["apiVersion"] = .string(apiVersion)
        object["kind"] = .string(kind)
        return object
    }

    private static func message(_ bytes: [UInt8], _ schema: [Int: Field]) throws -> JSON {
        var reader = Reader(bytes: bytes, index: 0)
        var object: JSON = [:]
        while let (number, wire) = try reader.tag() {
            guard let field = schema[number] else {
                try reader.skip(wire)
                continue
            }
            switch field {
            case .string(let name):
                object[name] = .string(String(decoding: try reader.lengthDelimited(), as: UTF8.self))
            case .int(let name):
                object[name] = .int(Int(truncatingIfNeeded: try reader.varint()))
            case .bool(let name):
                object[name] = .bool(try reader.varint() != 0)
            case .message(let name, let inner):
                object[name] = try message(try reader.lengthDelimited(), inner)
            case .messages(let name, let inner):
                let item = try message(try reader.lengthDelimited(), inner)
                object[name] = .array((object[name]?.array ?? []) + [item])
            case .strings(let name):
                let text = String(decoding: try reader.lengthDelimited(), as: UTF8.self)
                object[name] = .array((object[name]?.array ?? []) + [.string(text)])
            case .stringMap(let name), .bytesMap(let name):
                var entry = Reader(bytes: try reader.lengthDelimited(), index: 0)
                var key = ""
                var value: [UInt8] = []
                while let (entryField, entryWire) = try entry.tag() {
                    if entryWire == 2 {
                        let data = try entry.lengthDelimited()
                        if entryField == 1 { key = String(decoding: data, as: UTF8.self) } else { value = data }
                    } else {
                        try entry.skip(entryWire)
                    }
                }
                let text: String
                if case .bytesMap = field {
                    text = Data(value).base64EncodedString()
                } else {
                    text = String(decoding: value, as: UTF8.self)
                }
                var map = object[name] ?? [:]
                map[key] = .string(text)
                object[name] = map
            }
        }
        return object
    }

    struct Reader {
        let bytes: [UInt8]
        var index: Int

        mutating func varint() throws -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                result |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return result }
                shift += 7
                if shift > 63 { throw Malformed() }
            }
            throw Malformed()
        }

        mutating func tag() throws -> (Int, Int)? {
            guard index < bytes.count else { return nil }
            let key = try varint()
            return (Int(key >> 3), Int(key & 7))
        }

        mutating func lengthDelimited() throws -> [UInt8] {
            let length = Int(try varint())
            guard length >= 0, index + length <= bytes.count else { throw Malformed() }
            defer { index += length }
            return Array(bytes[index..<index + length])
        }

        mutating func skip(_ wire: Int) throws {
            switch wire {
            case 0: _ = try varint()
            case 1: index += 8
            case 2: _ = try lengthDelimited()
            case 5: index += 4
            default: throw Malformed()
            }
            if index > bytes.count { throw Malformed() }
        }
    }
}
