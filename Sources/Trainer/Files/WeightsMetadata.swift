import ConvNet
import Foundation

/// What dtrain stores beside the weights in every file it writes (checkpoints and exports) and reads from any
/// safetensors file: the class folder names and their readable names (JSON lists in label order) and the
/// resolved config (JSON). Plain weights from elsewhere have none of it.
public enum WeightsMetadata {
    public static func strings(_ key: String, of reader: SafeTensorsReader) -> [String] {
        guard let text = reader.metadata[key],
              case .array(let items)? = try? JSONValue.parse(Data(text.utf8), source: reader.source) else { return [] }
        return items.compactMap { if case .string(let s) = $0 { s } else { nil } }
    }

    /// Class folder names in label order (empty when the file has none).
    public static func classes(of reader: SafeTensorsReader) -> [String] { strings("classes", of: reader) }

    /// Readable class names, or the folder names when the file has no readable ones.
    public static func classNames(of reader: SafeTensorsReader) -> [String] {
        let classes = classes(of: reader), names = strings("class_names", of: reader)
        return names.count == classes.count ? names : classes
    }

    /// The resolved config the weights were trained with, or nil.
    public static func config(of reader: SafeTensorsReader) -> JSONValue? {
        reader.metadata["config"].flatMap { try? JSONValue.parse(Data($0.utf8), source: reader.source) }
    }

    /// The resolved config, or nil when the file has none; a stored config that is not valid JSON (or too large)
    /// is an error naming the file, not "no config".
    public static func checkedConfig(of reader: SafeTensorsReader) throws -> JSONValue? {
        try reader.metadata["config"].map {
            try JSONValue.parse(Data($0.utf8), source: "\(reader.source) (stored config)")
        }
    }

    /// The metadata entries for `classes`, `class_names` and `config`.
    public static func entries(classes: [String], classNames: [String], config: JSONValue?) -> [String: String] {
        var m = ["classes": JSONValue.array(classes.map { .string($0) }).serialized(),
                 "class_names": JSONValue.array(classNames.map { .string($0) }).serialized()]
        if let config { m["config"] = config.serialized() }
        return m
    }
}
