import ConvNet

extension FilterGrid {
    /// The first convolution's filters of `network` as a picture; nil for a network without a convolution.
    public static func firstConvolution(of network: Network) -> RasterImage? {
        guard let index = network.layers.firstIndex(where: { $0 is Convolution }),
              let weight = network.parameterSlots(ofLayer: index).first else { return nil }
        return render(weights: UnsafeBufferPointer(start: weight.value, count: weight.count), filters: weight.dims[0],
                      channels: weight.dims[1], kernelHeight: weight.dims[2], kernelWidth: weight.dims[3])
    }
}
