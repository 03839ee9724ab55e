import Basics
import Foundation

/// A small ImageNet-style folder of generated JPEGs: `OUT/train/<wnid>/*.JPEG`, `OUT/val/<wnid>/*.JPEG` and a
/// `names.txt` mapping the WordNet-style folder names to readable ones. Each class is a coloured shape on a
/// textured background, at varied image sizes and positions, so a network can learn it and every resize and crop
/// path is exercised. For trying a config or a cluster without ImageNet.
public enum SyntheticFolder {
    public static let shapes = ["square", "disc", "horizontal-bar", "vertical-bar", "cross", "ring", "diagonal",
        "frame"]

    /// Writes `classes` classes with `train` and `val` images each; sizes are drawn in `minSide...maxSide`.
    public static func write(to root: String, classes: Int, train: Int, val: Int, minSide: Int = 240,
                             maxSide: Int = 400, seed: UInt64 = 0) throws {
        guard classes >= 1, classes <= 1000, train >= 1, val >= 1, minSide >= 8, maxSide >= minSide else {
            throw DataError("synthetic folder: need 1…1000 classes, at least one image per split, and 8 ≤ min side ≤ "
                + "max side")
        }
        let encoder = try JPEGEncoder()
        var names = ""
        for c in 0..<classes {
            let wnid = String(format: "n%08d", c)
            let (colour, shape) = look(c)
            names += "\(wnid) \(colours[colour].name) \(shapes[shape])\n"
            for (split, count) in [("train", train), ("val", val)] {
                let folder = "\(root)/\(split)/\(wnid)"
                do {
                    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                } catch {
                    throw DataError("cannot create '\(folder)': \(error.localizedDescription)")
                }
                for i in 0..<count {
                    var random = SeededGenerator(dataSeed: seed, UInt64(c), split == "train" ? 0 : 1, UInt64(i))
                    let width = minSide + random.integer(through: maxSide - minSide)
                    let height = minSide + random.integer(through: maxSide - minSide)
                    let image = draw(width: width, height: height, colour: colours[colour].rgb, shape: shape,
                        random: &random)
                    let bytes = try encoder.encode(image, quality: 90)
                    let path = "\(folder)/\(wnid)_\(i).JPEG"
                    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
                        throw DataError("cannot write '\(path)'")
                    }
                }
            }
        }
        guard FileManager.default.createFile(atPath: root + "/names.txt", contents: Data(names.utf8)) else {
            throw DataError("cannot write '\(root)/names.txt'")
        }
    }

    static let colours: [(name: String, rgb: (UInt8, UInt8, UInt8))] = [
        ("red", (220, 40, 40)), ("green", (40, 180, 60)), ("blue", (40, 80, 220)), ("yellow", (230, 200, 40)),
        ("magenta", (200, 60, 200)), ("cyan", (40, 200, 200)), ("orange", (240, 140, 30)), ("white", (245, 245, 245))]

    /// Class c: colour c mod 8 and shape (c + c/8) mod 8, distinct pairs for the first 64 classes.
    static func look(_ c: Int) -> (colour: Int, shape: Int) { (c % 8, (c + c / 8) % 8) }

    static func draw(width: Int, height: Int, colour: (UInt8, UInt8, UInt8), shape: Int,
                     random: inout SeededGenerator) -> Image {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let side = min(width, height)
        let size = Double(side) * (0.35 + 0.3 * random.uniform())
        let cx = Double(width) * (0.3 + 0.4 * random.uniform()), cy = Double(height) * (0.3 + 0.4 * random.uniform())
        let r = size / 2
        for y in 0..<height {
            for x in 0..<width {
                let dx = Double(x) - cx, dy = Double(y) - cy
                let inside: Bool
                switch shape {
                case 0: inside = abs(dx) < r && abs(dy) < r
                case 1: inside = dx * dx + dy * dy < r * r
                case 2: inside = abs(dy) < r / 4 && abs(dx) < r * 1.4
                case 3: inside = abs(dx) < r / 4 && abs(dy) < r * 1.4
                case 4: inside = (abs(dx) < r / 5 || abs(dy) < r / 5) && abs(dx) < r && abs(dy) < r
                case 5: let d = (dx * dx + dy * dy).squareRoot(); inside = d < r && d > r * 0.6
                case 6: inside = abs(dx - dy) < r / 4 && abs(dx) < r
                default: inside = (abs(dx) < r && abs(dy) < r) && !(abs(dx) < r * 0.7 && abs(dy) < r * 0.7)
                }
                let noise = Int(random.next() & 31)
                let o = (y * width + x) * 3
                if inside {
                    pixels[o] = UInt8(clamping: Int(colour.0) - 16 + noise)
                    pixels[o + 1] = UInt8(clamping: Int(colour.1) - 16 + noise)
                    pixels[o + 2] = UInt8(clamping: Int(colour.2) - 16 + noise)
                } else {
                    let t = UInt8(clamping: 90 + ((x / 16 + y / 16) & 1) * 40 + noise)
                    pixels[o] = t; pixels[o + 1] = t; pixels[o + 2] = t
                }
            }
        }
        return Image(width: width, height: height, channels: 3, pixels: pixels)
    }
}
