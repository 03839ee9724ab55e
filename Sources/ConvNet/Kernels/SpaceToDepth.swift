/// A strided convolution rewritten as a stride-1 one (space-to-depth), so that it can run on Winograd's algorithms:
/// each s×s block of the zero-padded image becomes one pixel of s² times the channels, and the k×k kernel, padded
/// with zeros to a multiple of s, becomes a ⌈k/s⌉×⌈k/s⌉ kernel over those channels:
///
///     x'[(c·s + a)·s + b][i][j] = x[c][s·i + a − p][s·j + b − p]   (zero outside the image)
///     w'[f][(c·s + a)·s + b][i][j] = w[f][c][s·i + a][s·j + b]     (zero past the kernel)
///     y[f][oy][ox] = Σ w'[f][c'][i][j] · x'[c'][oy + i][ox + j]    (stride 1, no padding)
///
/// AlexNet's conv1 (11×11/4, 3 channels) becomes a 3×3 convolution of 48 channels on 57×57 maps: 1.19× the
/// multiply-adds of the direct sum (the 12×12 padded kernel), which F(4×4, 3×3) then cuts by 4. Every pixel and tap
/// has one place in the rearranged layout, so the gradients map back by the same indices (`addInputGradient`,
/// `addFilterGradient`).
struct SpaceToDepth {
    /// The original layer: input channels, rows and columns, square kernel, stride and zero padding.
    let channels: Int, height: Int, width: Int, kernel: Int, stride: Int, padding: Int
    /// The rearranged convolution's kernel, ⌈k/s⌉, and its input map (output size + kernel − 1 on each axis).
    let depthKernel: Int, depthHeight: Int, depthWidth: Int

    /// The rewrite of a layer when it pays: square kernel, stride and padding, one group, a 3×3 rearranged kernel
    /// (what the Winograd path takes), and enough rearranged channels and filters for its GEMMs (16, as there).
    init?(channels: Int, height: Int, width: Int, filters: Int, groups: Int, kernel: (Int, Int), stride: (Int, Int),
          padding: (Int, Int), outputHeight: Int, outputWidth: Int) {
        let s = stride.0, k = kernel.0
        guard groups == 1, s > 1, stride.1 == s, kernel.1 == k, padding.1 == padding.0,
              (k + s - 1) / s == 3, channels * s * s >= 16, filters >= 16 else { return nil }
        self.channels = channels
        self.height = height
        self.width = width
        self.kernel = k
        self.stride = s
        self.padding = padding.0
        depthKernel = 3
        depthHeight = outputHeight + depthKernel - 1
        depthWidth = outputWidth + depthKernel - 1
    }

    var depthChannels: Int { channels * stride * stride }
    /// Floats of one rearranged image.
    var imageFloats: Int { depthChannels * depthHeight * depthWidth }
    /// Floats of the rearranged filters, for `filters` of them.
    func filterFloats(filters: Int) -> Int { filters * depthChannels * depthKernel * depthKernel }

    /// The columns j of a rearranged row whose source column s·j + b − p lies inside the image.
    @inline(__always) private func columns(_ b: Int) -> Range<Int> {
        let s = stride, first = min(depthWidth, (padding - b + s - 1) / s), last = width - 1 + padding - b
        let end = last < 0 ? 0 : min(depthWidth, last / s + 1)
        return first..<max(first, end)
    }

    /// The source row of rearranged row i of sub-row a, or nil past the image.
    @inline(__always) private func sourceRow(_ i: Int, _ a: Int) -> Int? {
        let r = stride &* i &+ a &- padding
        return r >= 0 && r < height ? r : nil
    }

    /// x' of one image from x of the same image.
    func rearrange(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        forEachRow { depthRow, source, valid in
            let row = out + depthRow
            guard let source else { return row.update(repeating: 0, count: depthWidth) }
            let src = x + source
            for j in 0..<valid.lowerBound { row[j] = 0 }
            for j in valid { row[j] = src[stride &* j] }
            for j in valid.upperBound..<depthWidth { row[j] = 0 }
        }
    }

    /// dx += the rearranged input gradient dx' of one image, mapped back (the adjoint of `rearrange`).
    func addInputGradient(_ depth: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>) {
        forEachRow { depthRow, source, valid in
            guard let source else { return }
            let row = depth + depthRow, dst = dx + source
            for j in valid { dst[stride &* j] += row[j] }
        }
    }

    /// `body(depthRow, source, valid)` for every row of the rearranged image: the offset of the row, the offset of
    /// column j = 0 of its source row (nil past the image; the column read at j is source + s·j), and the columns j
    /// that lie inside the image.
    @inline(__always) private func forEachRow(_ body: (Int, Int?, Range<Int>) -> Void) {
        let s = stride, plane = depthHeight &* depthWidth
        for c in 0..<channels {
            for a in 0..<s {
                for b in 0..<s {
                    let first = ((c &* s &+ a) &* s &+ b) &* plane, valid = columns(b)
                    for i in 0..<depthHeight {
                        let source = sourceRow(i, a).map { r -> Int in (c &* height &+ r) &* width &+ b &- padding }
                        body(first &+ i &* depthWidth, source, valid)
                    }
                }
            }
        }
    }

    /// w' from weights `[filters, channels, k, k]`.
    func rearrangeFilters(_ w: UnsafePointer<Float>, filters: Int, into out: UnsafeMutablePointer<Float>) {
        forEachTap(filters: filters) { tap, depthTap in out[depthTap] = tap.map { w[$0] } ?? 0 }
    }

    /// dw += the rearranged filters' gradient dw', mapped back (the taps of the zero padding are dropped).
    func addFilterGradient(_ depth: UnsafePointer<Float>, filters: Int, into dw: UnsafeMutablePointer<Float>) {
        forEachTap(filters: filters) { tap, depthTap in if let tap { dw[tap] += depth[depthTap] } }
    }

    /// `body(tap, depthTap)` for every tap of the rearranged filters, with the index of the original tap it holds
    /// (nil for the zeros past the kernel).
    @inline(__always) private func forEachTap(filters: Int, _ body: (Int?, Int) -> Void) {
        let s = stride, r = depthKernel
        for f in 0..<filters {
            for c in 0..<channels {
                let kernelStart = (f &* channels &+ c) &* kernel &* kernel
                for a in 0..<s {
                    for b in 0..<s {
                        let depthStart = ((f &* channels &+ c) &* s &* s &+ a &* s &+ b) &* r &* r
                        for i in 0..<r {
                            for j in 0..<r {
                                let (ky, kx) = (s &* i &+ a, s &* j &+ b)
                                body(ky < kernel && kx < kernel ? kernelStart &+ ky &* kernel &+ kx : nil,
                                     depthStart &+ i &* r &+ j)
                            }
                        }
                    }
                }
            }
        }
    }
}
