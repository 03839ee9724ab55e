// Layout changes between planar maps (channel, row, column) and channels-innermost bands (row, column, channel) for
// the Winograd transforms, which compute eight channels at a time in SIMD lanes (Sources/CKernels/channel_lanes.c).
#ifndef DTRAIN_CHANNEL_LANES_H
#define DTRAIN_CHANNEL_LANES_H

// lanes[r·laneRowStride + col·pixelStride + c] = planes[c·planeStride + r·rowStride + col]
// for c < channels, r < rows, col < cols. Lanes past `channels` are left as they are.
void dtrain_planes_to_lanes(const float *planes, long planeStride, long rowStride, float *lanes, long pixelStride,
                            long laneRowStride, long channels, long rows, long cols);

// The inverse: planes[…] = lanes[…] (or += with `accumulate`), for the same ranges.
void dtrain_lanes_to_planes(const float *lanes, long pixelStride, long laneRowStride, float *planes,
                            long planeStride, long rowStride, long channels, long rows, long cols, int accumulate);

#endif
