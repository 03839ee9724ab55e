import Basics
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// How images become network inputs: the output shape, the training crop, flips and per-channel normalisation.
/// Any image size works with any setting: an image is always resized and cropped to the output shape, a gray image
/// fed to a 3-channel input is replicated and an RGB image fed to a 1-channel input becomes its ITU-R 601 luma.
public struct PreprocessOptions: Sendable, Equatable {
    /// The training crop.
    public enum TrainCrop: Sendable, Equatable {
        /// Inception/PyTorch `RandomResizedCrop`: a box covering a random `scale` fraction of the image area with a
        /// random aspect ratio (log-uniform in `ratio`), resized to the output.
        /// PyTorch defaults: (0.08, 1), (3/4, 4/3).
        case randomResized(scale: ClosedRange<Double>, ratio: ClosedRange<Double>)
        /// Resize so the shorter side is `shorterSide` (nil: just large enough to cover the output), then take a
        /// random crop of the output size (the AlexNet/VGG recipe: 256 then random 224).
        case resizeThenRandomCrop(shorterSide: Int?)
        /// No random crop: the evaluation transform (shorter side to `evalShorterSide`, centre crop), flips aside.
        case centre
        /// torchvision's `RandomCrop(size, padding)`, the CIFAR/Fashion-MNIST recipe: resize to cover the output,
        /// add `padding` black pixels (value 0 before normalisation, as torchvision's default fill) on every side,
        /// then take a random output-sized window at a whole-pixel offset. A shift of up to `padding` pixels.
        case paddedRandomCrop(padding: Int)

        /// PyTorch's defaults for `randomResized`.
        public static let inception = TrainCrop.randomResized(scale: 0.08...1, ratio: (3.0 / 4)...(4.0 / 3))
    }

    /// Output width, height and channels (1 or 3): the network's input shape.
    public var width: Int
    public var height: Int
    public var channels: Int
    /// The training crop. Default: resize to cover the output, then a random crop (no change for images that
    /// already have the output size, such as Fashion-MNIST at 28×28).
    public var trainCrop: TrainCrop = .resizeThenRandomCrop(shorterSide: nil)
    /// Flip training images left–right with probability 1/2. Default true.
    public var horizontalFlip: Bool = true
    /// Evaluation: resize so the shorter side is this (nil: just large enough to cover the output), then crop the
    /// centre. The ImageNet recipe uses 256 for a 224 output.
    public var evalShorterSide: Int? = nil
    /// Per-channel mean and standard deviation on the [0, 1] scale: input = (pixel/255 − mean) / std. One value
    /// applies to every channel. Default 0 and 1 (pixels scaled to [0, 1]). ImageNet: mean [0.485, 0.456, 0.406],
    /// std [0.229, 0.224, 0.225].
    public var mean: [Float] = [0]
    public var std: [Float] = [1]

    public init(width: Int, height: Int, channels: Int) {
        self.width = width
        self.height = height
        self.channels = channels
    }

    /// Floats in one output image (C·H·W).
    public var imageSize: Int { channels * height * width }

    /// Throws a `DataError` naming the option that is out of range.
    public func validate() throws {
        guard width > 0, height > 0, width <= 1 << 14, height <= 1 << 14 else {
            throw DataError("preprocessing: output size \(width)×\(height) must be positive (and at most 16384)")
        }
        guard channels == 1 || channels == 3 else {
            throw DataError("preprocessing: channels must be 1 or 3, found \(channels)")
        }
        guard mean.count == 1 || mean.count == channels else {
            throw DataError("preprocessing: 'mean' needs 1 or \(channels) values, found \(mean.count)")
        }
        guard std.count == 1 || std.count == channels else {
            throw DataError("preprocessing: 'std' needs 1 or \(channels) values, found \(std.count)")
        }
        guard std.allSatisfy({ $0 > 0 && $0.isFinite }), mean.allSatisfy({ $0.isFinite }) else {
            throw DataError("preprocessing: 'std' values must be positive and 'mean' values finite")
        }
        if let s = evalShorterSide, s <= 0 { throw DataError("preprocessing: eval resize \(s) must be positive") }
        switch trainCrop {
        case .randomResized(let scale, let ratio):
            guard scale.lowerBound > 0, scale.upperBound <= 1 else {
                throw DataError("preprocessing: crop scale \(scale) must lie within (0, 1]")
            }
            guard ratio.lowerBound > 0 else { throw DataError("preprocessing: crop ratio \(ratio) must be positive") }
        case .resizeThenRandomCrop(let s):
            if let s, s <= 0 { throw DataError("preprocessing: train resize \(s) must be positive") }
        case .paddedRandomCrop(let padding):
            guard padding >= 0, padding <= min(width, height) else {
                throw DataError("preprocessing: crop padding \(padding) must lie within 0...\(min(width, height)) "
                    + "(the output's shorter side)")
            }
        case .centre:
            break
        }
    }
}

/// A crop box in source pixel coordinates (continuous: x0 is the left edge of the box), plus a flip.
public struct CropBox: Sendable, Equatable {
    public var x: Double, y: Double, width: Double, height: Double
    public var flip: Bool
    public init(x: Double, y: Double, width: Double, height: Double, flip: Bool) {
        self.x = x; self.y = y; self.width = width; self.height = height; self.flip = flip
    }
}

/// Turns a decoded image into one float32 CHW network input, written straight into the caller's buffer:
/// choose a crop box (random in training, the centre in evaluation), resample it bilinearly to the output size
/// (PyTorch's half-pixel convention, align_corners = false), flip, convert channels, normalise.
/// All randomness comes from the generator passed in, which the loader seeds from (seed, epoch, sample index).
public struct Preprocessor: Sendable {
    public let options: PreprocessOptions
    private let scale: [Float]   // per output channel: 1 / (255 std)
    private let bias: [Float]    // per output channel: −mean / std

    public init(_ options: PreprocessOptions) throws {
        try options.validate()
        self.options = options
        let c = options.channels
        let mean = (0..<c).map { options.mean.count == 1 ? options.mean[0] : options.mean[$0] }
        let std = (0..<c).map { options.std.count == 1 ? options.std[0] : options.std[$0] }
        scale = (0..<c).map { 1 / (255 * std[$0]) }
        bias = (0..<c).map { -mean[$0] / std[$0] }
    }

    /// The smallest shorter side a JPEG may be decoded at (libjpeg scaled decoding) without losing resolution the
    /// crop needs: the resize target for the resize modes; for random-resized crops the output side divided by
    /// √(smallest scale), since the smallest crop must still hold the output's pixels.
    public func minimumDecodeShorterSide(training: Bool) -> Int {
        let out = max(options.width, options.height)
        if training {
            switch options.trainCrop {
            case .randomResized(let scale, _):
                return Int((Double(out) / scale.lowerBound.squareRoot()).rounded(.up))
            case .resizeThenRandomCrop(let s):
                return max(s ?? out, out)
            case .paddedRandomCrop, .centre:
                break
            }
        }
        return max(options.evalShorterSide ?? out, out)
    }

    /// The factor that resizes a `w`×`h` image so its shorter side is `shorterSide` (or more, if needed to cover the
    /// output in both directions).
    private func resizeFactor(width w: Int, height h: Int, shorterSide: Int?) -> Double {
        let cover = max(Double(options.width) / Double(w), Double(options.height) / Double(h))
        guard let s = shorterSide else { return cover }
        return max(Double(s) / Double(min(w, h)), cover)
    }

    /// The crop box for a `w`×`h` image: random in training (drawn from `random`), the centre in evaluation.
    public func cropBox(width w: Int, height h: Int, training: Bool, random: inout SeededGenerator) -> CropBox {
        let outW = Double(options.width), outH = Double(options.height)
        func centreBox() -> CropBox {
            let f = resizeFactor(width: w, height: h, shorterSide: options.evalShorterSide)
            let bw = outW / f, bh = outH / f
            return CropBox(x: (Double(w) - bw) / 2, y: (Double(h) - bh) / 2, width: bw, height: bh, flip: false)
        }
        guard training else { return centreBox() }
        var box: CropBox
        switch options.trainCrop {
        case .centre:
            box = centreBox()
        case .resizeThenRandomCrop(let s):
            let f = resizeFactor(width: w, height: h, shorterSide: s)
            let spareX = max(0, Int((Double(w) * f).rounded(.down)) - options.width)
            let spareY = max(0, Int((Double(h) * f).rounded(.down)) - options.height)
            let ox = random.integer(through: spareX), oy = random.integer(through: spareY)
            box = CropBox(x: Double(ox) / f, y: Double(oy) / f, width: outW / f, height: outH / f, flip: false)
        case .paddedRandomCrop(let padding):
            // Offsets in output pixels from −padding to spare + padding: the window may reach into the padding.
            let f = resizeFactor(width: w, height: h, shorterSide: nil)
            let spareX = max(0, Int((Double(w) * f).rounded(.down)) - options.width)
            let spareY = max(0, Int((Double(h) * f).rounded(.down)) - options.height)
            let ox = random.integer(through: spareX + 2 * padding) - padding
            let oy = random.integer(through: spareY + 2 * padding) - padding
            box = CropBox(x: Double(ox) / f, y: Double(oy) / f, width: outW / f, height: outH / f, flip: false)
        case .randomResized(let scale, let ratio):
            box = Preprocessor.randomResizedBox(width: w, height: h, scale: scale, ratio: ratio, random: &random)
        }
        if options.horizontalFlip { box.flip = random.next() & 1 == 1 }
        return box
    }

    /// torchvision's `RandomResizedCrop.get_params`: ten tries at a box of random area and log-uniform aspect
    /// ratio that fits; otherwise the largest centred box whose ratio is clamped to the range.
    static func randomResizedBox(width w: Int, height h: Int, scale: ClosedRange<Double>, ratio: ClosedRange<Double>,
                                 random: inout SeededGenerator) -> CropBox {
        let area = Double(w * h)
        let logRatio = log(ratio.lowerBound)...log(ratio.upperBound)
        for _ in 0..<10 {
            let target = area * random.uniform(scale)
            let aspect = exp(random.uniform(logRatio))
            let cw = Int((target * aspect).squareRoot().rounded())
            let ch = Int((target / aspect).squareRoot().rounded())
            if cw > 0, ch > 0, cw <= w, ch <= h {
                let top = random.integer(through: h - ch), left = random.integer(through: w - cw)
                return CropBox(x: Double(left), y: Double(top), width: Double(cw), height: Double(ch), flip: false)
            }
        }
        let inRatio = Double(w) / Double(h)
        var cw = w, ch = h
        if inRatio < ratio.lowerBound {
            ch = max(1, Int((Double(w) / ratio.lowerBound).rounded()))
        } else if inRatio > ratio.upperBound {
            cw = max(1, Int((Double(h) * ratio.upperBound).rounded()))
        }
        return CropBox(x: Double((w - cw) / 2), y: Double((h - ch) / 2), width: Double(cw), height: Double(ch),
                       flip: false)
    }

    /// Crops, resizes, flips, converts and normalises `image` into `out` (C·H·W floats).
    public func apply(_ image: Image, training: Bool, random: inout SeededGenerator,
                      into out: UnsafeMutablePointer<Float>) {
        let box = cropBox(width: image.width, height: image.height, training: training, random: &random)
        render(image, box: box, into: out)
    }

    /// Resamples `box` of `image` to the output, bilinearly, and writes normalised CHW floats to `out`.
    public func render(_ image: Image, box: CropBox, into out: UnsafeMutablePointer<Float>) {
        let source = (options.channels == 1 && image.channels == 3) ? image.grayscale() : image
        let outW = options.width, outH = options.height, plane = outW &* outH
        let w = source.width, h = source.height, sc = source.channels

        let planesFromSource = min(sc, options.channels)
        let wholePixels = box.x == box.x.rounded() && box.y == box.y.rounded()
        if wholePixels, box.width == Double(outW), box.height == Double(outH) {
            // The box is an output-sized window at a whole-pixel offset (Fashion-MNIST at 28×28, padded or not): no
            // resampling. Bilinear weights would all be 0 here, so this gives the same floats as the general path.
            copyWindow(source, x: Int(box.x), y: Int(box.y), flip: box.flip, planes: planesFromSource, into: out)
        } else {
            resample(source, box: box, into: out)
            if box.x < 0 || box.y < 0 || box.x + box.width > Double(w) || box.y + box.height > Double(h) {
                blackenOutside(box, width: w, height: h, planes: planesFromSource, into: out)
            }
        }
        replicateGray(planesFromSource, into: out)
    }

    /// The output-sized window of `source` whose top-left pixel is (x0, y0), normalised; pixels of the window
    /// outside the image are black (0 before normalisation). Flipped, output column x shows window column W−1−x.
    private func copyWindow(_ source: Image, x x0: Int, y y0: Int, flip: Bool, planes: Int,
                            into out: UnsafeMutablePointer<Float>) {
        let outW = options.width, outH = options.height, plane = outW &* outH
        let w = source.width, h = source.height, sc = source.channels
        // Output columns whose source column is inside the image (before the flip): x0 + x in 0..<w.
        let first = min(outW, max(0, -x0)), end = max(first, min(outW, w - x0))
        source.pixels.withUnsafeBufferPointer { pixels in
            for c in 0..<planes {
                let a = scale[c], b = bias[c]
                for y in 0..<outH {
                    let row = out + (c &* plane &+ y &* outW)
                    let sy = y0 &+ y
                    guard sy >= 0, sy < h else { row.update(repeating: b, count: outW); continue }
                    let line = pixels.baseAddress! + (sy &* w &* sc &+ c)
                    for x in 0..<first { row[flip ? outW &- 1 &- x : x] = b }
                    for x in end..<outW { row[flip ? outW &- 1 &- x : x] = b }
                    if flip {
                        for x in first..<end { row[outW &- 1 &- x] = Float(line[(x0 &+ x) &* sc]) * a + b }
                    } else {
                        for x in first..<end { row[x] = Float(line[(x0 &+ x) &* sc]) * a + b }
                    }
                }
            }
        }
    }

    /// Padding for a resampled box that reaches outside the image: output pixels whose sample point lies outside
    /// the image are black (0 before normalisation), as in `copyWindow`.
    private func blackenOutside(_ box: CropBox, width w: Int, height h: Int, planes: Int,
                                into out: UnsafeMutablePointer<Float>) {
        let outW = options.width, outH = options.height, plane = outW &* outH
        let sx = box.width / Double(outW), sy = box.height / Double(outH)
        let outsideColumn = (0..<outW).map { x -> Bool in
            let centre = box.x + (Double(x) + 0.5) * sx
            return centre < 0 || centre > Double(w)
        }
        for y in 0..<outH {
            let centre = box.y + (Double(y) + 0.5) * sy
            let rowOutside = centre < 0 || centre > Double(h)
            for x in 0..<outW where rowOutside || outsideColumn[x] {
                let dst = box.flip ? outW - 1 - x : x
                for c in 0..<planes { out[c &* plane &+ y &* outW &+ dst] = bias[c] }
            }
        }
    }

    // house: numeric kernel
    /// Bilinear resampling of `box` of `source` to the output, normalised.
    private func resample(_ source: Image, box: CropBox, into out: UnsafeMutablePointer<Float>) {
        let outW = options.width, outH = options.height, plane = outW &* outH
        let w = source.width, h = source.height, sc = source.channels
        // Column tables: for output column x, the two source columns (as byte offsets) and the weight of the right.
        var left = [Int](repeating: 0, count: outW), right = [Int](repeating: 0, count: outW)
        var weight = [Float](repeating: 0, count: outW)
        let sx = box.width / Double(outW)
        for x in 0..<outW {
            let src = min(max(box.x + (Double(x) + 0.5) * sx - 0.5, 0), Double(w - 1))
            let lo = Int(src)
            let dst = box.flip ? outW - 1 - x : x
            left[dst] = lo * sc
            right[dst] = min(lo + 1, w - 1) * sc
            weight[dst] = Float(src - Double(lo))
        }
        // Separable: each source row the output needs is resampled horizontally once into a planar float row (the
        // two most recent are kept, as consecutive output rows often share one), then each output row is a
        // vertical blend of two such rows, a contiguous loop that vectorises.
        let sy = box.height / Double(outH)
        let planesFromSource = min(sc, options.channels)
        var rowStorage = [Float](repeating: 0, count: 2 * sc * outW)
        source.pixels.withUnsafeBufferPointer { pixelBuffer in
            let pixels = pixelBuffer.baseAddress!
            left.withUnsafeBufferPointer { left in
                right.withUnsafeBufferPointer { right in
                    weight.withUnsafeBufferPointer { weight in
                        rowStorage.withUnsafeMutableBufferPointer { rows in
                            var upper = rows.baseAddress!, lower = rows.baseAddress! + sc &* outW
                            var upperRow = -1, lowerRow = -1
                            func resample(_ sourceRow: Int, into dst: UnsafeMutablePointer<Float>) {
                                let line = pixels + sourceRow &* w &* sc
                                for c in 0..<sc {
                                    let plane = dst + c &* outW
                                    for x in 0..<outW {
                                        let l = Float(line[left[x] &+ c]), r = Float(line[right[x] &+ c])
                                        plane[x] = l + (r - l) * weight[x]
                                    }
                                }
                            }
                            for y in 0..<outH {
                                let src = min(max(box.y + (Double(y) + 0.5) * sy - 0.5, 0), Double(h - 1))
                                let lo = Int(src), hi = min(lo + 1, h - 1)
                                let fy = Float(src - Double(lo))
                                if upperRow != lo {
                                    if lowerRow == lo {
                                        swap(&upper, &lower); swap(&upperRow, &lowerRow)
                                    } else {
                                        resample(lo, into: upper); upperRow = lo
                                    }
                                }
                                if lowerRow != hi {
                                    if hi == lo {
                                        lower.update(from: upper, count: sc &* outW)
                                    } else {
                                        resample(hi, into: lower)
                                    }
                                    lowerRow = hi
                                }
                                for c in 0..<planesFromSource {
                                    let row = out + (c &* plane &+ y &* outW)
                                    let t = upper + c &* outW, u = lower + c &* outW
                                    let a = scale[c], b = bias[c]
                                    for x in 0..<outW { row[x] = (t[x] + (u[x] - t[x]) * fy) * a + b }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// A gray image fed to a 3-channel input: channels 1 and 2 repeat channel 0's pixels (with their own
    /// normalisation).
    private func replicateGray(_ planesFromSource: Int, into out: UnsafeMutablePointer<Float>) {
        let plane = options.width &* options.height
        if planesFromSource < options.channels {
            let a0 = scale[0], b0 = bias[0]
            for c in planesFromSource..<options.channels {
                let a = scale[c] / a0, b = bias[c] - b0 * scale[c] / a0
                let dst = out + c &* plane
                for i in 0..<plane { dst[i] = out[i] * a + b }
            }
        }
    }
}
