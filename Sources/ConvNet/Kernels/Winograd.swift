import CBLAS

/// Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
/// 2016) for 3×3 stride-1 convolutions: each 2×2 block of output comes from a 4×4 input tile with 16 multiplies per
/// channel instead of 36. The tiles' 16 transformed values turn a convolution into 16 independent GEMMs
/// (filters × channels times channels × tiles), so the multiplies still run on sgemm:
///
///     U = G g Gᵀ (per filter and channel),  V = Bᵀ d B (per channel and tile),
///     M_ξ = U_ξ · V_ξ (ξ = 0..<16),         y = Aᵀ M A (per filter and tile).
///
/// The same routine computes a convolution's input gradient: for stride 1 that is a convolution of dy with the filters
/// rotated by 180° and their two channel axes swapped, padded by 2 − p. The weight gradient is the adjoint of the
/// forward: dU_ξ = (A dy Aᵀ)_ξ · V_ξᵀ summed over tiles, then dW = Gᵀ dU G.
///
/// AlexNet's 3×3 layers at 13×13 (7×7 tiles per image, 16% of them past the edge) need 1.9× fewer multiply-adds this
/// way; the transforms are additions only. Rounding differs from the direct sum by a few ulps (the test compares
/// against float64 at 1e-4).
///
/// Larger tiles save more: F(4×4, 3×3) and F(2×2, 5×5) read 6×6 tiles (`Winograd6.swift`), for 4× and 2.8× fewer
/// multiplies than the direct sum, at a rounding error a few times larger (their transforms have constants up to 8).
struct WinogradConvolution {
    /// Input channels, rows and columns (all groups), output channels (all groups), zero padding on each side.
    let channels: Int, height: Int, width: Int, outputs: Int, groups: Int, padding: Int
    /// F(m×m, r×r): output tile m and kernel size r; (2, 3) has its own transforms, the 6×6 tiles share theirs.
    let outputTile: Int, kernelSize: Int
    let matrices: WinogradMatrices
    /// Tiles transformed together (`KernelChoices.winogradTargetTiles`).
    let targetTiles: Int

    init(channels: Int, height: Int, width: Int, outputs: Int, groups: Int, padding: Int, outputTile: Int = 2,
         kernelSize: Int = 3, targetTiles: Int) {
        precondition([2, 4].contains(outputTile) && [3, 5].contains(kernelSize) && outputTile + kernelSize <= 7,
                     "Winograd F(\(outputTile), \(kernelSize)) is not implemented")
        self.channels = channels
        self.height = height
        self.width = width
        self.outputs = outputs
        self.groups = groups
        self.padding = padding
        self.outputTile = outputTile
        self.kernelSize = kernelSize
        self.targetTiles = max(1, targetTiles)
        matrices = WinogradMatrices(m: outputTile, r: kernelSize)
    }

    /// The input tile α × α has `tileArea` transformed values: the number of GEMMs.
    var tileArea: Int { (outputTile + kernelSize - 1) * (outputTile + kernelSize - 1) }
    var isSixBySix: Bool { tileArea == 36 }

    var outputHeight: Int { height + 2 * padding - (kernelSize - 1) }
    var outputWidth: Int { width + 2 * padding - (kernelSize - 1) }
    var tileRows: Int { (outputHeight + outputTile - 1) / outputTile }
    var tileColumns: Int { (outputWidth + outputTile - 1) / outputTile }

    var tilesPerImage: Int { tileRows * tileColumns }
    var channelsPerGroup: Int { channels / groups }
    var outputsPerGroup: Int { outputs / groups }

    /// Images transformed together (small maps), at least one.
    func chunk(batch: Int) -> Int { max(1, min(batch, targetTiles / max(1, tilesPerImage))) }

    /// Tile rows transformed together when a chunk is one image: all of them, or a band of a large map, so the
    /// scratch does not grow with the image (a 224×224 map would otherwise need 100 MB per thread).
    var bandRows: Int { max(1, min(tileRows, targetTiles / max(1, tileColumns))) }

    /// The tile rows of each pass over a chunk of `count` images.
    private func bands(images count: Int) -> [Range<Int>] {
        let rows = count == 1 ? bandRows : tileRows
        return stride(from: 0, to: tileRows, by: rows).map { $0..<min(tileRows, $0 + rows) }
    }

    /// Floats of the transformed filters of all groups.
    var filterFloats: Int { tileArea * outputs * channelsPerGroup }

    /// Floats one thread needs for a pass: the transformed input and the GEMM products of one group.
    func threadFloats(batch: Int) -> Int {
        let chunk = chunk(batch: batch), tiles = chunk == 1 ? bandRows * tileColumns : chunk * tilesPerImage
        if isSixBySix { return threadFloats6(tiles: tiles, bandTileRows: chunk == 1 ? bandRows : tileRows) }
        return tileArea * (channelsPerGroup + outputsPerGroup) * tiles
    }

    // MARK: Filters

    /// U[g][ξ][o][c] = (G w G ᵀ)_ξ for each group g, output channel o and input channel c of the group, from
    /// weights `[outputs, channels/groups, 3, 3]`.
    func transformFilters(_ w: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>) {
        if isSixBySix {
            let taps = kernelSize * kernelSize
            transformFilters6(w, oStride: channelsPerGroup * taps, cStride: taps,
                              groupStride: outputsPerGroup * channelsPerGroup * taps, rotated: false, into: u)
            return
        }
        let og = outputsPerGroup, cg = channelsPerGroup, xiStride = og &* cg
        for g in 0..<groups {
            let base = u + g &* 16 &* xiStride
            for o in 0..<og {
                for c in 0..<cg {
                    let k = w + ((g &* og &+ o) &* cg &+ c) &* 9, out = base + (o &* cg &+ c)
                    // G k (4 × 3), then each of its rows times Gᵀ.
                    let a0 = k[0], a1 = k[1], a2 = k[2], b0 = k[3], b1 = k[4], b2 = k[5]
                    let c0 = k[6], c1 = k[7], c2 = k[8]
                    transformRow(a0, a1, a2, out, xiStride)
                    transformRow(0.5 * (a0 + b0 + c0), 0.5 * (a1 + b1 + c1), 0.5 * (a2 + b2 + c2),
                                 out + 4 &* xiStride, xiStride)
                    transformRow(0.5 * (a0 - b0 + c0), 0.5 * (a1 - b1 + c1), 0.5 * (a2 - b2 + c2),
                                 out + 8 &* xiStride, xiStride)
                    transformRow(c0, c1, c2, out + 12 &* xiStride, xiStride)
                }
            }
        }
    }

    /// (a, b, e) Gᵀ = (a, (a + b + e)/2, (a − b + e)/2, e), stored `stride` apart.
    @inline(__always) private func transformRow(_ a: Float, _ b: Float, _ e: Float, _ out: UnsafeMutablePointer<Float>,
                                                _ stride: Int) {
        out[0] = a
        out[stride] = 0.5 * (a + b + e)
        out[2 &* stride] = 0.5 * (a - b + e)
        out[3 &* stride] = e
    }

    /// U of this geometry as the input gradient of `forward` (which has this one's outputs as channels): the forward's
    /// kernels rotated by 180°, their channel axes swapped. For 6×6 tiles only: F(2×2, 3×3) reads the forward's U
    /// permuted instead (`rotated`).
    func transformGradientFilters(_ w: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>) {
        precondition(isSixBySix)
        let taps = kernelSize * kernelSize
        transformFilters6(w, oStride: taps, cStride: outputs / groups * taps,
                          groupStride: outputsPerGroup * channelsPerGroup * taps, rotated: true, into: u)
    }

    /// True if the input gradient reads the forward's transformed filters (F(2×2, 3×3)); 6×6 tiles transform their
    /// own (`transformGradientFilters`).
    var gradientReusesForwardFilters: Bool { !isSixBySix }

    /// Rotating a 3×3 kernel by 180° permutes its transform: G J = P G, with J reversing three entries and P swapping
    /// rows 0 and 3, so G (J k J) Gᵀ = P U Pᵀ. The input gradient therefore reuses the forward's U: ξ = 4a + b reads
    /// U at 4π(a) + π(b), transposed (its channel axes swap).
    static let rotated: [Int] = (0..<16).map { xi in
        let swap = [3, 1, 2, 0]
        return swap[xi / 4] * 4 + swap[xi % 4]
    }

    // MARK: The convolution

    /// y (+)= conv(x) for images `images`: x `[batch, channels, height, width]`, y `[batch, outputs, outputHeight,
    /// outputWidth]`, `u` from `transformFilters`. Overwrites y (plus `bias`) unless `accumulate`.
    /// `rotatedFilters`: u is the transform of the forward layer whose input gradient this computes (filters
    /// `[channels, outputs/groups, 3, 3]`), used rotated and transposed. `scratch` holds `threadFloats(batch:)` floats.
    func run(x: UnsafePointer<Float>, u: UnsafePointer<Float>, rotatedFilters: Bool, bias: UnsafePointer<Float>?,
             y: UnsafeMutablePointer<Float>, accumulate: Bool, images: Range<Int>, chunk: Int,
             scratch: UnsafeMutablePointer<Float>) {
        if isSixBySix {
            precondition(!rotatedFilters, "6×6 tiles transform the input gradient's filters themselves")
            run6(x: x, u: u, bias: bias, y: y, accumulate: accumulate, images: images, chunk: chunk, scratch: scratch)
            return
        }
        let cg = channelsPerGroup, og = outputsPerGroup, outPlane = outputHeight * outputWidth
        forEachTransformedPass4x4(x: x, images: images, chunk: chunk, scratch: scratch) { pass in
            let first = pass.first, count = pass.count, rows = pass.rows, perImage = pass.perImage, tiles = pass.tiles
            let g = pass.group, v = pass.v, m = pass.m
            let ug = u + g * tileArea * og * cg
            for xi in 0..<tileArea {
                if rotatedFilters {   // U stored [cg][og] per ξ by the forward layer
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(og), Int32(tiles), Int32(cg),
                                1, ug + WinogradConvolution.rotated[xi] * og * cg, Int32(og), v + xi * cg * tiles,
                                Int32(tiles), 0, m + xi * og * tiles, Int32(tiles))
                } else {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(og), Int32(tiles), Int32(cg),
                                1, ug + xi * og * cg, Int32(cg), v + xi * cg * tiles, Int32(tiles),
                                0, m + xi * og * tiles, Int32(tiles))
                }
            }
            for i in 0..<count {
                transformOutput(m + i * perImage, stride: tiles, filters: og, bias: bias.map { $0 + g * og },
                                rows: rows, into: y + ((first + i) * outputs + g * og) * outPlane,
                                accumulate: accumulate)
            }
        }
    }

    /// V of group `group` for tile rows `rows` of each image of a pass, image after image along rows `stride` long.
    private func transformInputs(_ x: UnsafePointer<Float>, images: Range<Int>, group: Int, rows: Range<Int>,
                                 into v: UnsafeMutablePointer<Float>, stride: Int) {
        let cg = channelsPerGroup, plane = height * width, perImage = rows.count * tileColumns
        for (i, image) in images.enumerated() {
            transformInput(x + (image * channels + group * cg) * plane, channels: cg, rows: rows,
                           into: v + i * perImage, stride: stride)
        }
    }

    /// Calls `body` for every pass over `images` and every group, with V of x already in place: the loops the 4×4
    /// path's forward and weight gradient share (`forEachTransformedPass` is the 6×6 path's).
    private func forEachTransformedPass4x4(x: UnsafePointer<Float>, images: Range<Int>, chunk: Int,
                                           scratch: UnsafeMutablePointer<Float>, _ body: (Pass) -> Void) {
        forEachPass(images, chunk: chunk) { first, count, rows in
            let perImage = rows.count * tileColumns, tiles = count * perImage
            let v = scratch, m = scratch + tileArea * channelsPerGroup * tiles
            for g in 0..<groups {
                transformInputs(x, images: first..<(first + count), group: g, rows: rows, into: v, stride: tiles)
                body(Pass(first: first, count: count, rows: rows, group: g, perImage: perImage, tiles: tiles, v: v,
                          m: m))
            }
        }
    }

    /// Calls `body(first image, image count, tile rows)` for each pass over `images`: chunks of whole small images,
    /// or one large image in bands of tile rows.
    func forEachPass(_ images: Range<Int>, chunk: Int, _ body: (Int, Int, Range<Int>) -> Void) {
        var first = images.lowerBound
        while first < images.upperBound {
            let count = min(chunk, images.upperBound - first)
            for rows in bands(images: count) { body(first, count, rows) }
            first += count
        }
    }

    // MARK: The weight gradient

    /// dU[g][ξ][o][c] += Σ_t dM_ξ[o][t] · V_ξ[c][t] over the tiles of images `images`, with V the forward's input
    /// transform of x and dM = A dy Aᵀ the adjoint of the output transform on each 2×2 block of dy (zero past the
    /// edge). `finishWeightGradient` turns dU into dW. `du` holds `filterFloats`; `scratch` `threadFloats(batch:)`.
    func accumulateWeightGradient(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, du: UnsafeMutablePointer<Float>,
                                  images: Range<Int>, chunk: Int, scratch: UnsafeMutablePointer<Float>) {
        if isSixBySix {
            accumulateWeightGradient6(x: x, dy: dy, du: du, images: images, chunk: chunk, scratch: scratch)
            return
        }
        let cg = channelsPerGroup, og = outputsPerGroup, outPlane = outputHeight * outputWidth
        forEachTransformedPass4x4(x: x, images: images, chunk: chunk, scratch: scratch) { pass in
            let tiles = pass.tiles, g = pass.group, v = pass.v, m = pass.m
            for i in 0..<pass.count {
                transformOutputGradient(dy + ((pass.first + i) * outputs + g * og) * outPlane, filters: og,
                                        rows: pass.rows, into: m + i * pass.perImage, stride: tiles)
            }
            let dug = du + g * tileArea * og * cg
            for xi in 0..<tileArea {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(og), Int32(cg), Int32(tiles),
                            1, m + xi * og * tiles, Int32(tiles), v + xi * cg * tiles, Int32(tiles),
                            1, dug + xi * og * cg, Int32(cg))
            }
        }
    }

    /// dW[o][c] += Gᵀ dU G for every filter and channel: the adjoint of the filter transform.
    func finishWeightGradient(_ du: UnsafePointer<Float>, into dw: UnsafeMutablePointer<Float>) {
        if isSixBySix { finishWeightGradient6(du, into: dw); return }
        let og = outputsPerGroup, cg = channelsPerGroup, xiStride = og &* cg
        for g in 0..<groups {
            let base = du + g &* 16 &* xiStride
            for o in 0..<og {
                for c in 0..<cg {
                    let q = base + (o &* cg &+ c), k = dw + ((g &* og &+ o) &* cg &+ c) &* 9
                    // T = Gᵀ dU (3 × 4), then dW = T G: each step maps (p0, p1, p2, p3) to
                    // (p0 + (p1 + p2)/2, (p1 − p2)/2, (p1 + p2)/2 + p3).
                    let r0 = SIMD4(q[0], q[xiStride], q[2 &* xiStride], q[3 &* xiStride])
                    let r1 = SIMD4(q[4 &* xiStride], q[5 &* xiStride], q[6 &* xiStride], q[7 &* xiStride])
                    let r2 = SIMD4(q[8 &* xiStride], q[9 &* xiStride], q[10 &* xiStride], q[11 &* xiStride])
                    let r3 = SIMD4(q[12 &* xiStride], q[13 &* xiStride], q[14 &* xiStride], q[15 &* xiStride])
                    addAdjointRow(r0 + 0.5 * (r1 + r2), k)
                    addAdjointRow(0.5 * (r1 - r2), k + 3)
                    addAdjointRow(0.5 * (r1 + r2) + r3, k + 6)
                }
            }
        }
    }

    /// k[0..<3] += (p0 + (p1 + p2)/2, (p1 − p2)/2, (p1 + p2)/2 + p3): one row of T G.
    @inline(__always) private func addAdjointRow(_ p: SIMD4<Float>, _ k: UnsafeMutablePointer<Float>) {
        k[0] += p[0] + 0.5 * (p[1] + p[2])
        k[1] += 0.5 * (p[1] - p[2])
        k[2] += 0.5 * (p[1] + p[2]) + p[3]
    }

    /// dM[ξ][o][t] = (A dy Aᵀ)_ξ for each filter o and 2×2 block t of dy in tile rows `rows` of one image (rows of
    /// dM are `stride` long).
    private func transformOutputGradient(_ dy: UnsafePointer<Float>, filters: Int, rows: Range<Int>,
                                         into m: UnsafeMutablePointer<Float>, stride: Int) {
        let oh = outputHeight, ow = outputWidth, tw = tileColumns
        let xiStride = filters &* stride
        for o in 0..<filters {
            let plane = dy + o &* oh &* ow
            let out = m + o &* stride
            for ty in rows {
                for tx in 0..<tw {
                    let oy = 2 &* ty, ox = 2 &* tx
                    let right = ox &+ 1 < ow, below = oy &+ 1 < oh
                    let p0 = plane + (oy &* ow &+ ox)
                    let y00 = p0[0], y01: Float = right ? p0[1] : 0
                    let y10: Float = below ? p0[ow] : 0, y11: Float = below && right ? p0[ow &+ 1] : 0
                    // A dy: rows y0, y0 + y1, y0 − y1, −y1 (y0, y1 the rows of the block); then the same on columns.
                    let o = out + ((ty &- rows.lowerBound) &* tw &+ tx)
                    storeAdjointRow(y00, y01, o, xiStride)
                    storeAdjointRow(y00 + y10, y01 + y11, o + 4 &* xiStride, xiStride)
                    storeAdjointRow(y00 - y10, y01 - y11, o + 8 &* xiStride, xiStride)
                    storeAdjointRow(-y10, -y11, o + 12 &* xiStride, xiStride)
                }
            }
        }
    }

    /// (a, b) Aᵀ = (a, a + b, a − b, −b), stored `stride` apart.
    @inline(__always)
    private func storeAdjointRow(_ a: Float, _ b: Float, _ o: UnsafeMutablePointer<Float>, _ stride: Int) {
        o[0] = a
        o[stride] = a + b
        o[2 &* stride] = a - b
        o[3 &* stride] = -b
    }

    /// V[ξ][c][t] = (Bᵀ d B)_ξ for the 4×4 tile d of channel c at each tile t in tile rows `rows` of one image; rows of
    /// V are `stride` long.
    private func transformInput(_ x: UnsafePointer<Float>, channels: Int, rows: Range<Int>,
                                into v: UnsafeMutablePointer<Float>, stride: Int) {
        let h = height, w = width, p = padding, tw = tileColumns
        let xiStride = channels &* stride
        for c in 0..<channels {
            let image = x + c &* h &* w
            let out = v + c &* stride
            for ty in rows {
                let top = 2 &* ty &- p
                for tx in 0..<tw {
                    let left = 2 &* tx &- p
                    // The tile, zero outside the image.
                    var d = SIMD16<Float>()
                    if top >= 0 && top &+ 4 <= h && left >= 0 && left &+ 4 <= w {
                        let row = image + (top &* w &+ left)
                        for r in 0..<4 {
                            let q = row + r &* w
                            d[r &* 4] = q[0]; d[r &* 4 &+ 1] = q[1]; d[r &* 4 &+ 2] = q[2]; d[r &* 4 &+ 3] = q[3]
                        }
                    } else {
                        for r in 0..<4 {
                            let yy = top &+ r
                            guard yy >= 0 && yy < h else { continue }
                            for s in 0..<4 {
                                let xx = left &+ s
                                if xx >= 0 && xx < w { d[r &* 4 &+ s] = image[yy &* w &+ xx] }
                            }
                        }
                    }
                    // Bᵀ d: rows 0 − 2, 1 + 2, 2 − 1, 1 − 3; then the same on the columns of each row.
                    let r0 = d.lowHalf.lowHalf, r1 = d.lowHalf.highHalf
                    let r2 = d.highHalf.lowHalf, r3 = d.highHalf.highHalf
                    let o = out + ((ty &- rows.lowerBound) &* tw &+ tx)
                    store(r0 - r2, o, xiStride)
                    store(r1 + r2, o + 4 &* xiStride, xiStride)
                    store(r2 - r1, o + 8 &* xiStride, xiStride)
                    store(r1 - r3, o + 12 &* xiStride, xiStride)
                }
            }
        }
    }

    /// The column transform of one row of Bᵀ d, stored at o, o + stride, o + 2·stride, o + 3·stride.
    @inline(__always) private func store(_ t: SIMD4<Float>, _ o: UnsafeMutablePointer<Float>, _ stride: Int) {
        o[0] = t[0] - t[2]
        o[stride] = t[1] + t[2]
        o[2 &* stride] = t[2] - t[1]
        o[3 &* stride] = t[1] - t[3]
    }

    /// y[o] (+)= Aᵀ M A (+ bias) for each filter o and tile in tile rows `rows` of one image; M rows are `stride` long.
    private func transformOutput(_ m: UnsafePointer<Float>, stride: Int, filters: Int, bias: UnsafePointer<Float>?,
                                 rows: Range<Int>, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let oh = outputHeight, ow = outputWidth, tw = tileColumns
        let xiStride = filters &* stride
        for o in 0..<filters {
            let shift = bias?[o] ?? 0
            let plane = y + o &* oh &* ow
            let row = m + o &* stride
            for ty in rows {
                for tx in 0..<tw {
                    let index = (ty &- rows.lowerBound) &* tw &+ tx
                    var q = SIMD16<Float>()
                    for xi in 0..<16 { q[xi] = row[xi &* xiStride &+ index] }
                    // Aᵀ M: rows 0 + 1 + 2 and 1 − 2 − 3.
                    let r0 = q.lowHalf.lowHalf, r1 = q.lowHalf.highHalf
                    let r2 = q.highHalf.lowHalf, r3 = q.highHalf.highHalf
                    let s0 = r0 + r1 + r2, s1 = r1 - r2 - r3
                    let y00 = s0[0] + s0[1] + s0[2] + shift, y01 = s0[1] - s0[2] - s0[3] + shift
                    let y10 = s1[0] + s1[1] + s1[2] + shift, y11 = s1[1] - s1[2] - s1[3] + shift
                    let oy = 2 &* ty, ox = 2 &* tx
                    let p0 = plane + (oy &* ow &+ ox)
                    let right = ox &+ 1 < ow, below = oy &+ 1 < oh
                    if accumulate {
                        p0[0] += y00
                        if right { p0[1] += y01 }
                        if below { p0[ow] += y10; if right { p0[ow &+ 1] += y11 } }
                    } else {
                        p0[0] = y00
                        if right { p0[1] = y01 }
                        if below { p0[ow] = y10; if right { p0[ow &+ 1] = y11 } }
                    }
                }
            }
        }
    }
}
