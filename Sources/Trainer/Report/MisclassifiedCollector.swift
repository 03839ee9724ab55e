import ConvNet

/// Rank 0's sample of misclassified validation images, taken during an evaluation from the batches it already has
/// in memory: the first `limit` images whose top-1 class is wrong (the rule the confusion matrix counts by), at most
/// `perClass` of each actual class so that a split stored class by class still shows several classes. It
/// reads the network's input and softmax output after the forward pass and calls no collective, so the other ranks
/// (which pass none) run the same evaluation. Once full it costs one comparison per batch.
public final class MisclassifiedCollector {
    let limit: Int
    let classNames: [String]
    /// The config's per-channel normalisation: input = (pixel/255 − mean) / std, undone for display.
    let mean: [Float]
    let std: [Float]
    private(set) var images: [MisclassifiedImage] = []
    private var taken: [Int: Int] = [:]
    /// Enough per class to reach `limit` when every class has some wrong.
    var perClass: Int { max(1, (limit + classNames.count - 1) / max(1, classNames.count)) }

    init(limit: Int = 16, classNames: [String], mean: [Float], std: [Float]) {
        self.limit = limit
        self.classNames = classNames
        self.mean = mean
        self.std = std
    }

    var isFull: Bool { images.count >= limit }

    /// A new evaluation: the previous one's images go.
    func reset() {
        images = []
        taken = [:]
    }

    /// Looks at one evaluated batch: `input` the images as the network read them, `logits` its scores,
    /// `probabilities` their softmax (`logits.batch` rows), `labels` the classes.
    func add(input: Tensor, logits: Tensor, probabilities: UnsafePointer<Float>, labels: UnsafePointer<Int32>) {
        let classes = logits.shape.count
        for s in 0..<logits.batch where !isFull {
            let actual = Int(labels[s])
            guard ConfusionMatrix.prediction(logits.sample(s), count: classes) != actual,
                  taken[actual, default: 0] < perClass else { continue }
            let p = probabilities + s * classes
            let order = (0..<classes).sorted { p[$0] > p[$1] }.prefix(3)
            guard let png = try? picture(input, sample: s).pngBytes() else { continue }
            taken[actual, default: 0] += 1
            images.append(MisclassifiedImage(png: png, actual: name(actual),
                                             top: order.map { (name($0), Double(p[$0])) }))
        }
    }

    private func name(_ label: Int) -> String {
        classNames.indices.contains(label) ? classNames[label] : "class \(label)"
    }

    /// Sample `s` of `input` back on the 0–255 scale: gray for one channel, RGB for three, else the first channel.
    func picture(_ input: Tensor, sample s: Int) -> RasterImage {
        let shape = input.shape, colour = shape.channels == 3
        var image = RasterImage(width: shape.width, height: shape.height, channels: colour ? 3 : 1)
        let x = input.sample(s)
        func level(_ c: Int, _ i: Int) -> UInt8 {
            let m = mean.isEmpty ? 0 : mean[min(c, mean.count - 1)], d = std.isEmpty ? 1 : std[min(c, std.count - 1)]
            let value = (x[c * shape.plane + i] * d + m) * 255
            return value.isFinite ? UInt8(max(0, min(255, value.rounded()))) : 0
        }
        for i in 0..<shape.plane {
            let colourAt = colour ? RGB(level(0, i), level(1, i), level(2, i))
                : { let g = level(0, i); return RGB(g, g, g) }()
            image.set(i % shape.width, i / shape.width, colourAt)
        }
        return image
    }
}
