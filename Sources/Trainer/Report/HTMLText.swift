import Foundation

/// Text made safe for an HTML page: the report quotes a config, class names and paths that may hold any character.
enum HTMLText {
    /// `&`, `<`, `>`, `"` and `'` as entities, so the text is shown as written inside elements and quoted attributes.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// A PNG as an `<img>` source inside the page itself (the report loads nothing from elsewhere).
    static func pngSource(_ bytes: [UInt8]) -> String {
        "data:image/png;base64," + Data(bytes).base64EncodedString()
    }
}
