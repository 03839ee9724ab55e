import XCTest
import CKernels

/// The layout changes of the Winograd paths (`channel_lanes.c`): planar maps to channels-innermost bands and back,
/// exactly, on every remainder of the 8×8 blocks, leaving the lanes and planes outside the ranges alone.
final class ChannelLanesTests: XCTestCase {
    func testPlanesToLanesAndBack() {
        for channels in [1, 7, 8, 9, 17] {
            for cols in [1, 7, 8, 13, 17] {
                for rows in [1, 3] {
                    check(channels: channels, rows: rows, cols: cols)
                }
            }
        }
    }

    private func check(channels: Int, rows: Int, cols: Int) {
        let what = "\(channels) channels, \(rows) × \(cols)"
        // Planes with a wider row and a gap between planes; lanes with spare lanes and a spare pixel per row.
        let rowStride = cols + 3, planeStride = rows * rowStride + 5
        let pixelStride = (channels + 7) / 8 * 8 + 8, laneRowStride = (cols + 1) * pixelStride
        var planes = (0..<(channels * planeStride)).map { Float($0) * 0.5 + 1 }
        var lanes = [Float](repeating: -7, count: rows * laneRowStride)
        dtrain_planes_to_lanes(&planes, planeStride, rowStride, &lanes, pixelStride, laneRowStride, channels, rows,
                               cols)
        for r in 0..<rows {
            for col in 0...cols {
                for c in 0..<pixelStride {
                    let value = lanes[r * laneRowStride + col * pixelStride + c]
                    let expected = col < cols && c < channels ? planes[c * planeStride + r * rowStride + col] : -7
                    XCTAssertEqual(value, expected, "\(what): lane \(c) of pixel (\(r), \(col))")
                }
            }
        }
        for accumulate in [false, true] {
            var back = [Float](repeating: 3, count: planes.count)
            dtrain_lanes_to_planes(&lanes, pixelStride, laneRowStride, &back, planeStride, rowStride, channels, rows,
                                   cols, accumulate ? 1 : 0)
            for c in 0..<channels {
                for r in 0..<rows {
                    for col in 0..<rowStride {
                        let i = c * planeStride + r * rowStride + col
                        let expected = col < cols ? (accumulate ? 3 + planes[i] : planes[i]) : 3
                        XCTAssertEqual(back[i], expected, "\(what), accumulate \(accumulate): (\(c), \(r), \(col))")
                    }
                }
            }
        }
    }
}
