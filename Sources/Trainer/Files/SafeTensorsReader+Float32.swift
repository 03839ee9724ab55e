import Foundation

extension SafeTensorsDType {
    /// The floating-point types a state dict may store its weights in; they are widened or rounded to F32 on import.
    public static let weightTypes: [SafeTensorsDType] = [.f32, .f16, .bf16, .f64]
}

extension SafeTensorsReader {
    /// Reads a floating-point tensor (F32, F16, BF16 or F64) into float32 `destination`, whose count must equal the
    /// tensor's element count: F16 and BF16 widen exactly, F64 rounds to nearest (a value beyond float32's range
    /// becomes infinite, which the importer's finiteness check reports). Other dtypes are an error naming the tensor.
    public func copyAsFloat32(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        guard let info = info(name) else { throw SafeTensorsError("\(source): no tensor named \"\(name)\"") }
        guard SafeTensorsDType.weightTypes.contains(info.dtype) else {
            let types = SafeTensorsDType.weightTypes.map(\.rawValue).joined(separator: ", ")
            throw SafeTensorsError("\(source): tensor \"\(name)\" has dtype \(info.dtype.rawValue); weights must be "
                + "floating point (\(types))")
        }
        guard destination.count == info.elementCount else {
            throw SafeTensorsError("\(source): tensor \"\(name)\" has \(info.elementCount) elements (shape "
                + "\(info.shape)) but the destination holds \(destination.count)")
        }
        if info.dtype == .f32 { return try copyBytes(info, into: UnsafeMutableRawBufferPointer(destination)) }
        let count = info.elementCount
        switch info.dtype {
        case .f16:
            var bits = [UInt16](repeating: 0, count: count)
            try bits.withUnsafeMutableBytes { try copyBytes(info, into: $0) }
            for i in 0..<count { destination[i] = Float(Float16(bitPattern: UInt16(littleEndian: bits[i]))) }
        case .bf16:
            // bfloat16 is the upper half of a float32.
            var bits = [UInt16](repeating: 0, count: count)
            try bits.withUnsafeMutableBytes { try copyBytes(info, into: $0) }
            for i in 0..<count { destination[i] = Float(bitPattern: UInt32(UInt16(littleEndian: bits[i])) << 16) }
        default:
            var values = [Double](repeating: 0, count: count)
            try values.withUnsafeMutableBytes { try copyBytes(info, into: $0) }
            for i in 0..<count { destination[i] = Float(values[i]) }
        }
    }
}
