/// A pooling layer's window as its config set it, for code that re-expresses the network elsewhere (the ONNX
/// export): `(height, width)` pairs, padding on each side, and whether the output size is rounded up.
public struct PoolingGeometry: Equatable, Sendable {
    public let kernel: [Int]
    public let stride: [Int]
    public let padding: [Int]
    public let ceilMode: Bool
}

extension PoolingWindow {
    var geometry: PoolingGeometry {
        PoolingGeometry(kernel: [kernel.h, kernel.w], stride: [stride.h, stride.w], padding: [padding.h, padding.w],
                        ceilMode: ceilMode)
    }
}

public extension MaxPooling {
    var geometry: PoolingGeometry { window.geometry }
}

public extension AveragePooling {
    var geometry: PoolingGeometry { window.geometry }
}
