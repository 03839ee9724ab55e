import CKernels

/// The 6×6-tile Winograd algorithms, F(4×4, 3×3) and F(2×2, 5×5), both on the points 0, ±1, ±2 and infinity (see
/// `WinogradMatrices`), so both share one input transform Bᵀ:
///
///     Bᵀ = [4  0 −5  0  1  0]     Aᵀ (m = 4) = [1  1  1  1  1  0]     Aᵀ (m = 2) = [1  1  1  1  1  0]
///          [0 −4 −4  1  1  0]                  [0  1 −1  2 −2  0]                  [0  1 −1  2 −2  1]
///          [0  4 −4 −1  1  0]                  [0  1  1  4  4  0]
///          [0 −2 −1  2  1  0]                  [0  1 −1  8 −8  1]
///          [0  2 −1 −2  1  0]
///          [0  4  0 −5  0  1]
///
/// Unlike F(2×2, 3×3), these keep channels innermost: V[ξ][t][c] and M[ξ][t][o], rows padded to a multiple of 8, so
/// every transform works on eight channels (or filters) of one tile at once in SIMD lanes, with whole-vector loads
/// and stores whatever the map's size (AlexNet's 13×13 maps have only 4 tiles a row). The GEMMs take the transposes:
/// M_ξ = V_ξ U_ξᵀ (tiles × filters) and dU_ξ += dM_ξᵀ V_ξ. The input is first copied channels-innermost with its
/// zero padding (`pad`), so a tile is 36 vector loads without a branch.
import CBLAS

typealias Lanes = SIMD8<Float>

@inline(__always) func load(_ p: UnsafePointer<Float>) -> Lanes {
    UnsafeRawPointer(p).loadUnaligned(as: Lanes.self)
}

@inline(__always) func store(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self)
}

/// `count` ≤ 8 lanes from p (the rest zero).
@inline(__always) func load(_ p: UnsafePointer<Float>, _ count: Int) -> Lanes {
    if count == 8 { return load(p) }
    var v = Lanes()
    for l in 0..<count { v[l] = p[l] }
    return v
}

@inline(__always) func store(_ v: Lanes, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count == 8 { store(v, p); return }
    for l in 0..<count { p[l] = v[l] }
}

/// A multiple of 8: the padded length of a channel row.
@inline(__always) func lanesRoundUp(_ n: Int) -> Int { (n + 7) / 8 * 8 }

typealias Six = (Lanes, Lanes, Lanes, Lanes, Lanes, Lanes)
typealias Four = (Lanes, Lanes, Lanes, Lanes)

/// Bᵀ applied to six values (a column or a row of a tile), lane by lane.
@inline(__always) private func inputTransform(_ d: Six) -> Six {
    let a = d.4 - 4 * d.2, b = d.3 - 4 * d.1, c = d.4 - d.2, e = 2 * (d.3 - d.1)
    return (4 * d.0 - 5 * d.2 + d.4, a + b, a - b, c + e, c - e, 4 * d.1 - 5 * d.3 + d.5)
}

@inline(__always) private func six(_ p: UnsafePointer<Float>, _ stride: Int) -> Six {
    (load(p), load(p + stride), load(p + 2 &* stride), load(p + 3 &* stride), load(p + 4 &* stride),
     load(p + 5 &* stride))
}

@inline(__always) private func store(_ v: Six, _ p: UnsafeMutablePointer<Float>, _ stride: Int) {
    store(v.0, p); store(v.1, p + stride); store(v.2, p + 2 &* stride); store(v.3, p + 3 &* stride)
    store(v.4, p + 4 &* stride); store(v.5, p + 5 &* stride)
}

extension WinogradConvolution {
    /// Floats of one pass's scratch with 6×6 tiles: V and M (padded rows), then the work band: the padded input
    /// copy, later the output (or output gradient) band, channels innermost.
    func threadFloats6(tiles: Int, bandTileRows: Int) -> Int {
        36 * tiles * (lanesRoundUp(channelsPerGroup) + lanesRoundUp(outputsPerGroup)) + paddedFloats(bandTileRows)
    }

    private var paddedWidth: Int { tileColumns * outputTile + 6 - outputTile }

    private func paddedFloats(_ tileRows: Int) -> Int {
        let lanes = max(lanesRoundUp(channelsPerGroup), lanesRoundUp(outputsPerGroup))
        return (tileRows * outputTile + 6 - outputTile) * paddedWidth * lanes
    }

    // MARK: The convolution and the weight gradient

    /// One pass over some images and one group, for either tile size: V of the images' tiles is transformed, M is
    /// the space after it.
    struct Pass {
        let first: Int, count: Int, rows: Range<Int>, group: Int, perImage: Int, tiles: Int
        let v: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>
        /// The work band (6×6 tiles only), free once V is in place.
        var work: UnsafeMutablePointer<Float>? = nil
    }

    /// Calls `body` for every pass over `images` and every group, with V of x already in place.
    private func forEachTransformedPass(x: UnsafePointer<Float>, images: Range<Int>, chunk: Int,
                                        scratch: UnsafeMutablePointer<Float>, _ body: (Pass) -> Void) {
        let cg = channelsPerGroup, cp = lanesRoundUp(cg), op = lanesRoundUp(outputsPerGroup), plane = height * width
        forEachPass(images, chunk: chunk) { first, count, rows in
            let perImage = rows.count * tileColumns, tiles = count * perImage
            let v = scratch, m = v + 36 * tiles * cp, padded = m + 36 * tiles * op
            for g in 0..<groups {
                for i in 0..<count {
                    transformInput6(x + ((first + i) * channels + g * cg) * plane, rows: rows, work: padded,
                                    into: v + i * perImage * cp, xiStride: tiles * cp)
                }
                body(Pass(first: first, count: count, rows: rows, group: g, perImage: perImage, tiles: tiles, v: v,
                          m: m, work: padded))
            }
        }
    }

    /// `run` with 6×6 tiles: y (+)= conv(x) for images `images` (the filters untransposed: see
    /// `transformGradientFilters` for the input gradient's).
    func run6(x: UnsafePointer<Float>, u: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
              y: UnsafeMutablePointer<Float>, accumulate: Bool, images: Range<Int>, chunk: Int,
              scratch: UnsafeMutablePointer<Float>) {
        let cg = channelsPerGroup, og = outputsPerGroup, cp = lanesRoundUp(cg), op = lanesRoundUp(og)
        let outPlane = outputHeight * outputWidth
        forEachTransformedPass(x: x, images: images, chunk: chunk, scratch: scratch) { pass in
            let g = pass.group, tiles = pass.tiles, ug = u + g * 36 * og * cg
            for xi in 0..<36 {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tiles), Int32(og), Int32(cg),
                            1, pass.v + xi * tiles * cp, Int32(cp), ug + xi * og * cg, Int32(cg),
                            0, pass.m + xi * tiles * op, Int32(op))
            }
            for i in 0..<pass.count {
                transformOutput6(pass.m + i * pass.perImage * op, xiStride: tiles * op, bias: bias.map { $0 + g * og },
                                 rows: pass.rows, into: y + ((pass.first + i) * outputs + g * og) * outPlane,
                                 accumulate: accumulate, work: pass.work!)
            }
        }
    }

    /// `accumulateWeightGradient` with 6×6 tiles: dU_ξ += dM_ξᵀ V_ξ over the tiles of images `images`.
    func accumulateWeightGradient6(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, du: UnsafeMutablePointer<Float>,
                                   images: Range<Int>, chunk: Int, scratch: UnsafeMutablePointer<Float>) {
        let cg = channelsPerGroup, og = outputsPerGroup, cp = lanesRoundUp(cg), op = lanesRoundUp(og)
        let outPlane = outputHeight * outputWidth
        forEachTransformedPass(x: x, images: images, chunk: chunk, scratch: scratch) { pass in
            let g = pass.group, tiles = pass.tiles
            for i in 0..<pass.count {
                transformOutputGradient6(dy + ((pass.first + i) * outputs + g * og) * outPlane, rows: pass.rows,
                                         into: pass.m + i * pass.perImage * op, xiStride: tiles * op,
                                         work: pass.work!)
            }
            let dug = du + g * 36 * og * cg
            for xi in 0..<36 {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(og), Int32(cg), Int32(tiles),
                            1, pass.m + xi * tiles * op, Int32(op), pass.v + xi * tiles * cp, Int32(cp),
                            1, dug + xi * og * cg, Int32(cg))
            }
        }
    }

    // MARK: V = Bᵀ d B

    /// V[ξ][t][c] for the tiles in tile rows `rows` of one image's channels of a group (`x`, planar), rows `cp` long
    /// (zero past the channels); `work` holds `paddedFloats`.
    private func transformInput6(_ x: UnsafePointer<Float>, rows: Range<Int>, work: UnsafeMutablePointer<Float>,
                                 into v: UnsafeMutablePointer<Float>, xiStride: Int) {
        let h = height, w = width, p = padding, tw = tileColumns, step = outputTile
        let cg = channelsPerGroup, cp = lanesRoundUp(cg), wp = paddedWidth
        let top = rows.lowerBound &* step &- p, bandRows = rows.count &* step &+ 6 &- step
        // The band channels-innermost, zero outside the image.
        work.update(repeating: 0, count: bandRows &* wp &* cp)
        let first = max(0, -top), end = min(bandRows, h &- top)
        if end > first {
            dtrain_planes_to_lanes(x + (top &+ first) &* w, h &* w, w, work + (first &* wp &+ p) &* cp, cp, wp &* cp,
                                   cg, end &- first, w)
        }
        withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 36) { buffer in
            let columns = buffer.baseAddress!   // (Bᵀ d)[i][s] at columns[s·6 + i]
            for ty in 0..<rows.count {
                for tx in 0..<tw {
                    let tile = work + (ty &* step &* wp &+ tx &* step) &* cp
                    let out = v + (ty &* tw &+ tx) &* cp
                    var c = 0
                    while c < cp {
                        for s in 0..<6 {
                            let t = inputTransform(six(tile + (s &* cp &+ c), wp &* cp))
                            columns[s &* 6] = t.0; columns[s &* 6 &+ 1] = t.1; columns[s &* 6 &+ 2] = t.2
                            columns[s &* 6 &+ 3] = t.3; columns[s &* 6 &+ 4] = t.4; columns[s &* 6 &+ 5] = t.5
                        }
                        for i in 0..<6 {
                            let row = (columns[i], columns[6 &+ i], columns[12 &+ i], columns[18 &+ i],
                                       columns[24 &+ i], columns[30 &+ i])
                            store(inputTransform(row), out + (i &* 6 &* xiStride &+ c), xiStride)
                        }
                        c &+= 8
                    }
                }
            }
        }
    }

    // MARK: Y = Aᵀ M A

    /// Aᵀ applied to six values: m = 4 or 2 results.
    @inline(__always) private func outputTransform(_ v: Six) -> Four {
        let s = v.1 + v.2, d = v.1 - v.2, s2 = v.3 + v.4, d2 = v.3 - v.4
        if outputTile == 2 { return (v.0 + s + s2, d + 2 * d2 + v.5, Lanes(), Lanes()) }
        return (v.0 + s + s2, d + 2 * d2, s + 4 * s2, d + 8 * d2 + v.5)
    }

    /// y[o] (+)= Aᵀ M A (+ bias) for each tile in tile rows `rows` of one image and each filter of a group
    /// (M[ξ][t][o], rows padded; `y` planar): the tiles' m×m blocks go to the work band channels innermost, whole,
    /// and the band to the planar maps in one pass, clipped at the map's edge.
    private func transformOutput6(_ m: UnsafePointer<Float>, xiStride: Int, bias: UnsafePointer<Float>?,
                                  rows: Range<Int>, into y: UnsafeMutablePointer<Float>, accumulate: Bool,
                                  work: UnsafeMutablePointer<Float>) {
        let oh = outputHeight, ow = outputWidth, tw = tileColumns, step = outputTile, og = outputsPerGroup
        let op = lanesRoundUp(og), bandRow = tw &* step &* op
        withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 24) { buffer in
            let partial = buffer.baseAddress!   // (Aᵀ M)[a][j] at partial[a·6 + j]
            for ty in rows {
                for tx in 0..<tw {
                    let q = m + ((ty &- rows.lowerBound) &* tw &+ tx) &* op
                    let offset: Int = (ty &- rows.lowerBound) &* step &* bandRow &+ tx &* step &* op
                    let block = work + offset
                    var o = 0
                    while o < og {
                        for j in 0..<6 {
                            let a = outputTransform(six(q + (j &* xiStride &+ o), 6 &* xiStride))
                            partial[j] = a.0; partial[6 &+ j] = a.1; partial[12 &+ j] = a.2; partial[18 &+ j] = a.3
                        }
                        let shift = bias.map { load($0 + o, min(8, og &- o)) } ?? Lanes()
                        for a in 0..<step {
                            let r = outputTransform((partial[a &* 6], partial[a &* 6 &+ 1], partial[a &* 6 &+ 2],
                                                     partial[a &* 6 &+ 3], partial[a &* 6 &+ 4], partial[a &* 6 &+ 5]))
                            let line = block + (a &* bandRow &+ o)
                            store(r.0 + shift, line); store(r.1 + shift, line + op)
                            if step == 4 { store(r.2 + shift, line + 2 &* op); store(r.3 + shift, line + 3 &* op) }
                        }
                        o &+= 8
                    }
                }
            }
        }
        let top = rows.lowerBound &* step, count = min(oh, rows.upperBound &* step) &- top
        dtrain_lanes_to_planes(work, op, bandRow, y + top &* ow, oh &* ow, ow, og, count, ow, accumulate ? 1 : 0)
    }

    // MARK: dM = A dY Aᵀ

    /// A applied to m values: six results (the adjoint of `outputTransform`).
    @inline(__always) private func outputAdjoint(_ y: Four) -> Six {
        if outputTile == 2 { return (y.0, y.0 + y.1, y.0 - y.1, y.0 + 2 * y.1, y.0 - 2 * y.1, y.1) }
        let even = y.0 + y.2, odd = y.1 + y.3, even4 = y.0 + 4 * y.2, odd8 = 2 * y.1 + 8 * y.3
        return (y.0, even + odd, even - odd, even4 + odd8, even4 - odd8, y.3)
    }

    /// dM[ξ][t][o] = (A dy Aᵀ)_ξ for each m×m block of dy (planar, one image's filters of a group) in tile rows
    /// `rows`, zero past the map's edge; rows padded with zeros. The band of dy goes to `work` channels innermost
    /// first (zeros past the edge and the filters), so every block is whole vectors.
    private func transformOutputGradient6(_ dy: UnsafePointer<Float>, rows: Range<Int>,
                                          into m: UnsafeMutablePointer<Float>, xiStride: Int,
                                          work: UnsafeMutablePointer<Float>) {
        let oh = outputHeight, ow = outputWidth, tw = tileColumns, step = outputTile, og = outputsPerGroup
        let op = lanesRoundUp(og), bandRow = tw &* step &* op
        let top = rows.lowerBound &* step, count = min(oh, rows.upperBound &* step) &- top
        work.update(repeating: 0, count: rows.count &* step &* bandRow)
        dtrain_planes_to_lanes(dy + top &* ow, oh &* ow, ow, work, op, bandRow, og, count, ow)
        withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 24) { buffer in
            let columns = buffer.baseAddress!   // (A dy)[i][b] at columns[b·6 + i]
            for ty in rows {
                for tx in 0..<tw {
                    let out = m + ((ty &- rows.lowerBound) &* tw &+ tx) &* op
                    let offset: Int = (ty &- rows.lowerBound) &* step &* bandRow &+ tx &* step &* op
                    let block = work + offset
                    var o = 0
                    while o < op {
                        for b in 0..<step {
                            let column = block + (b &* op &+ o)
                            let z = outputAdjoint((load(column), load(column + bandRow),
                                                   step == 4 ? load(column + 2 &* bandRow) : Lanes(),
                                                   step == 4 ? load(column + 3 &* bandRow) : Lanes()))
                            columns[b &* 6] = z.0; columns[b &* 6 &+ 1] = z.1; columns[b &* 6 &+ 2] = z.2
                            columns[b &* 6 &+ 3] = z.3; columns[b &* 6 &+ 4] = z.4; columns[b &* 6 &+ 5] = z.5
                        }
                        for i in 0..<6 {
                            let row = step == 4
                                ? (columns[i], columns[6 &+ i], columns[12 &+ i], columns[18 &+ i])
                                : (columns[i], columns[6 &+ i], Lanes(), Lanes())
                            store(outputAdjoint(row), out + (i &* 6 &* xiStride &+ o), xiStride)
                        }
                        o &+= 8
                    }
                }
            }
        }
    }
}
