/// The shape of one sample, channels × height × width (NCHW without the batch).
/// A flat vector, such as a fully connected layer's output, is `Shape(channels: n, height: 1, width: 1)`.
public struct Shape: Hashable, Sendable, CustomStringConvertible {
    public var channels: Int
    public var height: Int
    public var width: Int

    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    public init(vector count: Int) {
        self.init(channels: count, height: 1, width: 1)
    }

    /// Floats in one sample.
    public var count: Int { channels * height * width }
    /// Floats in one channel plane.
    public var plane: Int { height * width }

    public var description: String { "\(channels)×\(height)×\(width)" }
}
