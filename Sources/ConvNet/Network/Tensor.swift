/// A view of `batch` samples of `shape`, laid out NCHW in float32. It does not own its memory:
/// the network allocates every activation once and hands out views, so a step allocates nothing.
public struct Tensor {
    public var data: UnsafeMutablePointer<Float>
    public var batch: Int
    public var shape: Shape

    public init(data: UnsafeMutablePointer<Float>, batch: Int, shape: Shape) {
        self.data = data
        self.batch = batch
        self.shape = shape
    }

    /// Floats in the whole view.
    public var count: Int { batch * shape.count }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }

    /// Pointer to sample `n`.
    @inline(__always) public func sample(_ n: Int) -> UnsafeMutablePointer<Float> { data + n * shape.count }

    /// Element access for tests and reference code; hot loops use pointers.
    public subscript(n: Int, c: Int, h: Int, w: Int) -> Float {
        get { data[((n * shape.channels + c) * shape.height + h) * shape.width + w] }
        nonmutating set { data[((n * shape.channels + c) * shape.height + h) * shape.width + w] = newValue }
    }

    public func fill(_ value: Float) { data.update(repeating: value, count: count) }
}

/// Memory the caller owns: used by tests, benchmarks and the data loader to hold batches.
public final class TensorStorage {
    public let tensor: Tensor
    public init(batch: Int, shape: Shape, value: Float = 0) {
        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, batch * shape.count))
        pointer.initialize(repeating: value, count: max(1, batch * shape.count))
        tensor = Tensor(data: pointer, batch: batch, shape: shape)
    }
    deinit { tensor.data.deallocate() }
}
