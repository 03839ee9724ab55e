import XCTest
@testable import ConvNet

/// Every layer's backward against central differences of its forward (see `checkGradients`).
final class LayerGradientTests: XCTestCase {
    // MARK: convolution

    func testConvolutionBatchStridePadding() {
        checkLayer(#"{"type": "conv", "filters": 3, "kernel": 3, "stride": 2, "padding": 1}"#, inputs: [shape(2, 7, 6)],
            batch: 3)
    }

    func testConvolutionWideRows() {
        // rows of 19–20 outputs: the eight-lane im2col copy and col2im add with their tails
        checkLayer(#"{"type": "conv", "filters": 2, "kernel": 3, "padding": 1}"#, inputs: [shape(1, 3, 20)], batch: 2)
        checkLayer(#"{"type": "conv", "filters": 2, "kernel": [2, 4], "stride": [1, 2], "padding": [0, 1]}"#,
            inputs: [shape(1, 3, 40)], batch: 1)
    }

    func testConvolutionInBandsOfRows() {
        // A tiny budget makes every image too large for one GEMM, so images are cut into bands of output rows.
        var banded = KernelChoices.standard
        (banded.convolutionChunkFloats, banded.minimumBandColumns) = (1, 1)
        checkLayer(#"{"type": "conv", "filters": 2, "kernel": 3, "stride": 2, "padding": 1}"#, inputs: [shape(2, 9, 7)],
                   batch: 2, kernels: banded)
        checkLayer(#"{"type": "conv", "filters": 4, "kernel": [2, 3], "padding": [1, 0], "groups": 2}"#,
                   inputs: [shape(2, 5, 4)], batch: 1, kernels: banded)
        checkLayer(#"{"type": "conv", "filters": 3, "kernel": 1}"#, inputs: [shape(2, 5, 3)], batch: 2, kernels: banded)
    }

    func testConvolutionNonSquareKernelStrideAndPadding() {
        checkLayer(#"{"type": "conv", "filters": 4, "kernel": [3, 2], "stride": [1, 2], "padding": [2, 1]}"#,
                   inputs: [shape(3, 5, 6)], batch: 2)
        // Stride 1 across and no horizontal padding: im2col and col2im take all kernel columns in one call, with
        // rows clipped by the vertical padding and a vertical stride.
        checkLayer(#"{"type": "conv", "filters": 3, "kernel": [3, 5], "stride": [2, 1], "padding": [1, 0]}"#,
                   inputs: [shape(2, 8, 12)], batch: 2)
        checkLayer(#"{"type": "conv", "filters": 2, "kernel": 5}"#, inputs: [shape(3, 12, 12)], batch: 3)
    }

    func testConvolutionGroupsWithoutBias() {
        checkLayer(#"{"type": "conv", "filters": 4, "kernel": 3, "groups": 2, "bias": false, "padding": 1}"#,
                   inputs: [shape(4, 5, 5)], batch: 2)
    }

    func testConvolutionSingleImage() {
        // batch 1 takes the path where the GEMM writes the output directly
        checkLayer(#"{"type": "conv", "filters": 2, "kernel": [2, 3], "stride": 2, "groups": 1}"#,
            inputs: [shape(2, 6, 7)], batch: 1)
    }

    func testPointwiseConvolution() {
        // one image: no im2col at all; two images: the chunked path
        checkLayer(#"{"type": "conv", "filters": 3, "kernel": 1}"#, inputs: [shape(4, 3, 3)], batch: 1)
        checkLayer(#"{"type": "conv", "filters": 4, "kernel": 1, "groups": 2}"#, inputs: [shape(4, 3, 3)], batch: 2)
    }

    func testConvolutionParameterGradientsOnly() throws {
        // a first layer is given no input gradient: the weight gradient must not depend on it
        let harness = try LayerHarness(#"{"type": "conv", "filters": 2, "kernel": 3, "padding": 1}"#,
            inputs: [shape(2, 4, 4)], batch: 2)
        harness.inputsWithoutGradient = [0]
        checkGradients(harness)
    }

    func testConvolutionChunksWithARemainder() throws {
        // 40×40 outputs: three images per GEMM, so a batch of 4 runs one chunk of 3 and one single image.
        let json = #"{"type": "conv", "filters": 2, "kernel": 3, "padding": 1}"#
        let harness = try LayerHarness(json, inputs: [shape(2, 40, 40)], batch: 4)
        let y = harness.runForward()
        let reference = harness.convolutionReference(filters: 2, kernel: (3, 3), padding: (1, 1))
        assertWithinRounding(Array(y.buffer), exact: reference.output, magnitude: reference.magnitude,
                             terms: reference.terms, "chunked forward")
        checkGradients(harness, maxCoordinates: 32)
    }

    func testFrozenLayersLeaveParameterGradientsAlone() throws {
        for (json, input) in [(#"{"type": "conv", "filters": 2, "kernel": 3}"#, shape(2, 4, 4)),
                              (#"{"type": "fc", "outputs": 3}"#, shape(4, 1, 1)),
                              (#"{"type": "batchnorm"}"#, shape(2, 2, 2))] {
            let trained = try LayerHarness(json, inputs: [input], batch: 2)
            let frozen = try LayerHarness(json, inputs: [input], batch: 2)
            frozen.computeParameterGradients = false
            let dy = TensorStorage(batch: 2, shape: trained.layer.outputShape)
            fillNormal(dy.tensor.data, count: dy.tensor.count, seed: 6)
            for harness in [trained, frozen] {
                harness.runForward()
                harness.runBackward(outputGradient: dy.tensor)
            }
            XCTAssert(frozen.parameters.gradients.allSatisfy { $0 == 0 }, json)
            XCTAssert(trained.parameters.gradients.contains { $0 != 0 }, json)
            XCTAssertEqual(Array(frozen.inputGradients[0].tensor.buffer),
                Array(trained.inputGradients[0].tensor.buffer), json)
        }
    }

    // MARK: fully connected, relu, flatten

    func testFullyConnected() {
        checkLayer(#"{"type": "fc", "outputs": 5}"#, inputs: [shape(3, 2, 2)], batch: 3)
        checkLayer(#"{"type": "fc", "outputs": 4, "bias": false}"#, inputs: [shape(6, 1, 1)], batch: 2)
    }

    func testReLU() throws {
        let report = checkLayer(#"{"type": "relu"}"#, inputs: [shape(3, 4, 4)], batch: 2)
        XCTAssertGreaterThan(report?.checked ?? 0, 40)
    }

    func testReLUKinkIsDetected() throws {
        // An input within ε of 0 crosses the kink: the checker must skip it, not report a false failure.
        let harness = try LayerHarness(#"{"type": "relu"}"#, inputs: [shape(1, 2, 4)], batch: 1)
        harness.inputs[0].tensor.data[3] = 0.001
        let report = checkGradients(harness)
        XCTAssertEqual(report.skippedAtKinks, 1)
    }

    func testFlatten() {
        checkLayer(#"{"type": "flatten"}"#, inputs: [shape(2, 3, 2)], batch: 2)
    }

    // MARK: pooling

    func testMaxPool() {
        checkLayer(#"{"type": "maxpool", "kernel": 2}"#, inputs: [shape(2, 4, 6)], batch: 2)
        // vectorised rows and a tail
        checkLayer(#"{"type": "maxpool", "kernel": 2}"#, inputs: [shape(1, 4, 19)], batch: 2)
    }

    func testMaxPoolOverlappingWithPadding() {
        // AlexNet's overlapping 3/2, here with padding 1 and ceil mode
        checkLayer(#"{"type": "maxpool", "kernel": 3, "stride": 2, "padding": 1}"#, inputs: [shape(2, 7, 7)], batch: 2)
        checkLayer(#"{"type": "maxpool", "kernel": 3, "stride": 2, "ceil_mode": true}"#, inputs: [shape(2, 6, 6)],
            batch: 2)
        // rows wide enough for the vectorised path
        checkLayer(#"{"type": "maxpool", "kernel": 3, "stride": 2, "padding": 1}"#, inputs: [shape(1, 5, 40)], batch: 1)
        checkLayer(#"{"type": "maxpool", "kernel": 3, "stride": 1, "padding": 1}"#, inputs: [shape(1, 3, 20)], batch: 1)
    }

    func testMaxPoolNonSquare() {
        checkLayer(#"{"type": "maxpool", "kernel": [2, 3], "stride": [1, 2], "padding": [1, 0]}"#,
            inputs: [shape(1, 5, 7)], batch: 2)
    }

    func testAveragePool() {
        checkLayer(#"{"type": "avgpool", "kernel": 3, "stride": 2, "padding": 1}"#, inputs: [shape(2, 6, 5)], batch: 2)
        checkLayer(#"{"type": "avgpool", "kernel": 3, "stride": 2, "padding": 1, "count_include_pad": false, "#
                   + #""ceil_mode": true}"#, inputs: [shape(2, 6, 6)], batch: 2)
    }

    func testGlobalAveragePool() {
        checkLayer(#"{"type": "global_avgpool"}"#, inputs: [shape(3, 3, 4)], batch: 2)
    }

    // MARK: normalisation, dropout, concat

    func testLocalResponseNorm() {
        // A large α makes the normalising term matter (with AlexNet's 1e-4 the layer is nearly linear).
        checkLayer(#"{"type": "lrn", "size": 3, "alpha": 0.5, "beta": 0.75, "k": 1}"#, inputs: [shape(5, 3, 3)],
            batch: 2)
        checkLayer(#"{"type": "lrn", "size": 4, "alpha": 1.0, "beta": 0.6, "k": 2}"#, inputs: [shape(6, 2, 2)],
            batch: 2)
        checkLayer(#"{"type": "lrn"}"#, inputs: [shape(7, 2, 2)], batch: 1)
    }

    func testDropoutTrain() throws {
        let harness = try LayerHarness(#"{"type": "dropout", "rate": 0.4}"#, inputs: [shape(3, 4, 4)], batch: 2)
        checkGradients(harness)
        // Some units dropped and some kept, so the check covered both.
        let y = harness.runForward()
        let zeros = y.buffer.filter { $0 == 0 }.count
        XCTAssertGreaterThan(zeros, 0)
        XCTAssertLessThan(zeros, y.count)
    }

    func testBatchNormTrain() {
        checkLayer(#"{"type": "batchnorm"}"#, inputs: [shape(3, 3, 3)], batch: 2, epsilon: 5e-3)
        // after a fully connected layer: statistics over the batch only
        checkLayer(#"{"type": "batchnorm", "eps": 1e-3}"#, inputs: [shape(4, 1, 1)], batch: 5, epsilon: 5e-3)
    }

    func testBatchNormEvalGradient() {
        checkLayer(#"{"type": "batchnorm"}"#, inputs: [shape(2, 2, 3)], batch: 2, mode: .eval)
        checkLayer(#"{"type": "batchnorm"}"#, inputs: [shape(5, 1, 1)], batch: 3, mode: .eval)
    }

    func testConcat() {
        let report = checkLayer(#"{"type": "concat"}"#, inputs: [shape(2, 3, 3), shape(1, 3, 3), shape(3, 3, 3)],
            batch: 2)
        XCTAssertNotNil(report)
    }

    // MARK: networks

    func testSmallNetworkParameterGradients() throws {
        let harness = try NetworkHarness("""
        {"input": [2, 8, 8], "classes": 4, "layers": [
          {"name": "conv1", "type": "conv", "filters": 3, "kernel": 3, "padding": 1},
          {"name": "bn1", "type": "batchnorm"},
          {"type": "relu"},
          {"type": "maxpool", "kernel": 3, "stride": 2, "ceil_mode": true},
          {"type": "lrn", "size": 3, "alpha": 0.3},
          {"type": "dropout", "rate": 0.3},
          {"name": "fc", "type": "fc", "outputs": "classes"}
        ]}
        """, batch: 2)
        checkGradients(harness, maxCoordinates: 24)
    }

    func testInceptionBranchesParameterGradients() throws {
        // Two branches read the same tensor and are joined: the shared input's gradient accumulates both.
        let harness = try NetworkHarness("""
        {"input": [3, 5, 5], "classes": 3, "layers": [
          {"name": "stem", "type": "conv", "filters": 4, "kernel": 1},
          {"name": "a", "type": "conv", "filters": 2, "kernel": 1},
          {"name": "b", "type": "conv", "filters": 3, "kernel": 3, "padding": 1, "inputs": "stem"},
          {"name": "c", "type": "maxpool", "kernel": 3, "stride": 1, "padding": 1, "inputs": ["stem"]},
          {"name": "join", "type": "concat", "inputs": ["a", "b", "c"]},
          {"type": "global_avgpool"},
          {"name": "fc", "type": "fc", "outputs": "classes"}
        ]}
        """, batch: 2)
        checkGradients(harness, maxCoordinates: 24)
    }
}
