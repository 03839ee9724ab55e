/// A JSON object read strictly. Each accessor marks its key as used; `finish()` then rejects any key that
/// nobody read, naming it and the place it appeared, so a typo such as "strid" is an error and not a silent default.
public final class ConfigObject {
    /// Where this object is, for messages: e.g. `network.layers[2] "conv1"`.
    public let path: String
    public let members: [String: JSONValue]
    private var used = Set<String>()

    public init(_ value: JSONValue, path: String) throws {
        guard case .object(let members) = value else {
            throw ConfigError("\(path): expected an object, found \(value.kind)")
        }
        self.members = members
        self.path = path
    }

    public func has(_ key: String) -> Bool { members[key] != nil && members[key] != .null }

    private func place(_ key: String) -> String { path.isEmpty ? "'\(key)'" : "\(path): '\(key)'" }

    private func value(_ key: String) throws -> JSONValue {
        used.insert(key)
        guard let v = members[key], v != .null else { throw ConfigError("\(place(key)) is required") }
        return v
    }

    public func raw(_ key: String) -> JSONValue? {
        used.insert(key)
        return members[key]
    }

    public func int(_ key: String) throws -> Int {
        let v = try value(key)
        guard case .number(let x) = v, x.rounded() == x, abs(x) < 9e15 else {
            throw ConfigError("\(place(key)) must be an integer, found \(v.serialized())")
        }
        return Int(x)
    }

    public func int(_ key: String, default fallback: Int) throws -> Int {
        has(key) ? try int(key) : mark(key, fallback)
    }

    public func double(_ key: String) throws -> Double {
        let v = try value(key)
        guard case .number(let x) = v else {
            throw ConfigError("\(place(key)) must be a number, found \(v.serialized())")
        }
        return x
    }

    public func double(_ key: String, default fallback: Double) throws -> Double {
        has(key) ? try double(key) : mark(key, fallback)
    }

    public func float(_ key: String, default fallback: Float) throws -> Float {
        Float(try double(key, default: Double(fallback)))
    }

    public func bool(_ key: String) throws -> Bool {
        let v = try value(key)
        guard case .bool(let b) = v else {
            throw ConfigError("\(place(key)) must be true or false, found \(v.serialized())")
        }
        return b
    }

    public func bool(_ key: String, default fallback: Bool) throws -> Bool {
        has(key) ? try bool(key) : mark(key, fallback)
    }

    public func string(_ key: String) throws -> String {
        let v = try value(key)
        guard case .string(let s) = v else {
            throw ConfigError("\(place(key)) must be a string, found \(v.serialized())")
        }
        return s
    }

    public func string(_ key: String, default fallback: String) throws -> String {
        has(key) ? try string(key) : mark(key, fallback)
    }

    /// A string that must be one of `choices`.
    public func choice(_ key: String, _ choices: [String], default fallback: String) throws -> String {
        let s = try string(key, default: fallback)
        guard choices.contains(s) else {
            throw ConfigError("\(place(key)) is \"\(s)\"; expected one of: \(choices.joined(separator: ", "))")
        }
        return s
    }

    public func strings(_ key: String) throws -> [String] {
        let v = try value(key)
        if case .string(let s) = v { return [s] }
        guard case .array(let items) = v else {
            throw ConfigError("\(place(key)) must be a list of strings, found \(v.serialized())")
        }
        return try items.map {
            guard case .string(let s) = $0 else {
                throw ConfigError("\(place(key)) must be a list of strings, found \($0.serialized())")
            }
            return s
        }
    }

    public func doubles(_ key: String) throws -> [Double] {
        let v = try value(key)
        if case .number(let x) = v { return [x] }
        guard case .array(let items) = v else {
            throw ConfigError("\(place(key)) must be a list of numbers, found \(v.serialized())")
        }
        return try items.map {
            guard case .number(let x) = $0 else {
                throw ConfigError("\(place(key)) must be a list of numbers, found \($0.serialized())")
            }
            return x
        }
    }

    public func ints(_ key: String) throws -> [Int] {
        try doubles(key).map { x in
            guard x.rounded() == x else { throw ConfigError("\(place(key)) must hold integers, found \(x)") }
            return Int(x)
        }
    }

    /// An integer or a pair `[vertical, horizontal]`, as kernel, stride and padding are written.
    public func pair(_ key: String) throws -> (Int, Int) {
        let values = try ints(key)
        switch values.count {
        case 1: return (values[0], values[0])
        case 2: return (values[0], values[1])
        default: throw ConfigError("\(place(key)) must be an integer or a pair [height, width], found \(values)")
        }
    }

    public func pair(_ key: String, default fallback: (Int, Int)) throws -> (Int, Int) {
        has(key) ? try pair(key) : mark(key, fallback)
    }

    public func object(_ key: String) throws -> ConfigObject {
        try ConfigObject(try value(key), path: path.isEmpty ? key : "\(path).\(key)")
    }

    /// An optional sub-object; an absent one reads as empty, so its defaults apply.
    public func objectOrEmpty(_ key: String) throws -> ConfigObject {
        has(key) ? try object(key) : try ConfigObject(.object([:]), path: path.isEmpty ? key : "\(path).\(key)")
    }

    public func objects(_ key: String) throws -> [ConfigObject] {
        let v = try value(key)
        guard case .array(let items) = v else {
            throw ConfigError("\(place(key)) must be a list of objects, found \(v.kind)")
        }
        let base = path.isEmpty ? key : "\(path).\(key)"
        return try items.enumerated().map { try ConfigObject($1, path: "\(base)[\($0)]") }
    }

    private func mark<T>(_ key: String, _ value: T) -> T {
        used.insert(key)
        return value
    }

    /// Marks keys as read without reading them (sections another module owns).
    public func ignore(_ keys: String...) { used.formUnion(keys) }

    /// Fails if any key was never read.
    public func finish() throws {
        let unknown = members.keys.filter { !used.contains($0) }.sorted()
        guard unknown.isEmpty else {
            let known = used.sorted().joined(separator: ", ")
            let list = unknown.map { "'\($0)'" }.joined(separator: ", ")
            throw ConfigError("\(path.isEmpty ? "config" : path): unknown key\(unknown.count > 1 ? "s" : "") \(list) "
                + "(known here: \(known))")
        }
    }
}
