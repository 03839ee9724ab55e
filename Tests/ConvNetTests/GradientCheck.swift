import Foundation
import XCTest
@testable import ConvNet

/// A tensor the gradient checker perturbs, with the gradient backward wrote for it.
struct CheckedVariable {
    let name: String
    let value: UnsafeMutablePointer<Float>
    let gradient: UnsafeMutablePointer<Float>
    let count: Int
}

/// What the finite-difference checker needs from a layer or a whole network.
protocol GradientCheckable: AnyObject {
    /// Runs forward and returns the output.
    func runForward() -> Tensor
    /// Runs backward from `outputGradient`; afterwards every variable's gradient holds dL/dv for L = Σ dy·y.
    func runBackward(outputGradient: Tensor)
    var variables: [CheckedVariable] { get }
    /// A fingerprint of the discrete choices of the last forward (ReLU signs, max-pool argmax): if it differs between
    /// x + ε and x − ε, the perturbation crossed a kink and central differences are meaningless there.
    func kinkPattern() -> [Int32]
}

/// The discrete choices of one layer's last forward (empty for smooth layers).
func kinkPattern(of layer: Layer, output: Tensor) -> [Int32] {
    if layer is ReLU { return output.buffer.map { $0 > 0 ? 1 : 0 } }
    if let pool = layer as? MaxPooling { return Array(UnsafeBufferPointer(start: pool.argmax!, count: output.count)) }
    return []
}

/// Fills with standard normal values (times `scale`) from `seed`.
func fillNormal(_ pointer: UnsafeMutablePointer<Float>, count: Int, seed: UInt64, scale: Float = 1) {
    var rng = SeededGenerator(seed: seed)
    for i in 0..<count { pointer[i] = rng.nextNormal() * scale }
}

func parseConfig(_ json: String, path: String) throws -> ConfigObject {
    try ConfigObject(try JSONValue.parse(Data(json.utf8), source: "test"), path: path)
}

/// One layer built from a JSON object exactly as a network builds it, with inputs, output, gradients, parameters
/// and scratch of its own. `runBackward` pre-fills every gradient with a constant and subtracts it afterwards,
/// so a layer that overwrites instead of adding (the contract) fails the check.
final class LayerHarness: GradientCheckable {
    let layer: Layer
    let parameters: ParameterBuffer
    let state: ParameterBuffer
    let batch: Int
    let inputs: [TensorStorage]
    let inputGradients: [TensorStorage]
    let output: TensorStorage
    private let scratch: UnsafeMutablePointer<Float>
    var mode: Mode = .train
    var seed: UInt64 = 1234
    /// False acts as a frozen layer: backward must leave the parameter gradients alone.
    var computeParameterGradients = true
    /// Inputs whose gradient is not requested (nil is passed to backward).
    var inputsWithoutGradient: Set<Int> = []

    /// The kernel choices the layer is built with and runs with.
    let kernels: KernelChoices

    init(_ json: String, inputs shapes: [Shape], batch: Int, classes: Int? = nil, seed: UInt64 = 1,
         kernels: KernelChoices = .standard) throws {
        let config = try parseConfig(json, path: "layer \"under_test\"")
        let type = try config.string("type")
        self.kernels = kernels
        let build = LayerBuildContext(name: "under_test", config: config, inputShapes: shapes, classes: classes,
                                      kernels: kernels)
        layer = try LayerRegistry.build(build, type: type)
        self.batch = batch
        parameters = ParameterBuffer(specs: layer.parameterSpecs.map { ("under_test", $0) }, withGradients: true)
        state = ParameterBuffer(specs: layer.stateSpecs.map { ("under_test", $0) }, withGradients: false)
        layer.bind(parameters: parameters.slots, state: state.slots)
        var rng = SeededGenerator(seed: seed &+ 99)
        for slot in state.slots { WeightInit.kaimingNormal.fill(slot, using: &rng) }
        // Random parameters (not the initial constants), so every term of the gradient is exercised.
        for (i, slot) in parameters.slots.enumerated() {
            fillNormal(slot.value, count: slot.count, seed: seed &+ UInt64(i) &+ 10, scale: 0.5)
        }
        inputs = shapes.map { TensorStorage(batch: batch, shape: $0) }
        for (i, x) in inputs.enumerated() {
            fillNormal(x.tensor.data, count: x.tensor.count, seed: seed &+ UInt64(i) &+ 100)
        }
        inputGradients = shapes.map { TensorStorage(batch: batch, shape: $0) }
        output = TensorStorage(batch: batch, shape: layer.outputShape)
        let scratchCount = max(1, layer.scratchCount(batch: batch), layer.scratchCount(batch: batch, threads: 4))
        scratch = .allocate(capacity: scratchCount)
        scratch.initialize(repeating: .nan, count: scratchCount)  // a layer reading scratch it did not write shows up
        layer.reserve(batch: batch)
    }

    deinit { scratch.deallocate() }

    /// Threads the layer may use (up to 4: the scratch is sized for that).
    var threads = 1

    var context: LayerContext {
        LayerContext(mode: mode, scratch: scratch, computeParameterGradients: computeParameterGradients, seed: seed,
                     threads: threads, kernels: kernels)
    }

    @discardableResult
    func runForward() -> Tensor {
        layer.forward(inputs.map(\.tensor), output.tensor, context)
        return output.tensor
    }

    func runBackward(outputGradient: Tensor) {
        let offset: Float = 0.25
        for g in inputGradients { g.tensor.fill(offset) }
        parameters.gradients.update(repeating: offset)
        let gradients = inputGradients.indices.map {
            inputsWithoutGradient.contains($0) ? nil : inputGradients[$0].tensor
        }
        layer.backward(inputs.map(\.tensor), output.tensor, outputGradient, gradients, context)
        for g in inputGradients { for i in 0..<g.tensor.count { g.tensor.data[i] -= offset } }
        for i in parameters.gradients.indices { parameters.gradients[i] -= offset }
    }

    var variables: [CheckedVariable] {
        inputs.indices.filter { !inputsWithoutGradient.contains($0) }.map {
            CheckedVariable(name: "input\($0)", value: inputs[$0].tensor.data, gradient: inputGradients[$0].tensor.data,
                            count: inputs[$0].tensor.count)
        } + parameters.slots.map {
            CheckedVariable(name: $0.name, value: $0.value, gradient: $0.gradient, count: $0.count)
        }
    }

    func kinkPattern() -> [Int32] { ConvNetTests.kinkPattern(of: layer, output: output.tensor) }
}

/// A small network built from a JSON `network` section; its parameters are the variables checked.
final class NetworkHarness: GradientCheckable {
    let network: Network
    let batch: Int
    var mode: Mode = .train
    var seed: UInt64 = 99

    init(_ json: String, batch: Int, seed: UInt64 = 3) throws {
        network = try Network(spec: try NetworkSpec(try parseConfig(json, path: "network")), maxBatch: batch)
        self.batch = batch
        network.initializeParameters(seed: seed)
        // Biases start at zero under Kaiming: make them random so their gradients are tested with non-trivial values.
        for slot in network.parameters.slots {
            if case .bias = slot.role { fillNormal(slot.value, count: slot.count, seed: seed &+ 5, scale: 0.1) }
        }
        let x = network.inputTensor(batch: batch)
        fillNormal(x.data, count: x.count, seed: seed &+ 7)
    }

    @discardableResult
    func runForward() -> Tensor { network.forward(batch: batch, mode: mode, seed: seed) }

    func runBackward(outputGradient: Tensor) {
        network.parameters.gradients.update(repeating: 0.25)  // backward must replace this, not add to it
        network.backward(batch: batch, mode: mode, seed: seed, logitsGradient: outputGradient)
    }

    var variables: [CheckedVariable] {
        network.parameters.slots.map {
            CheckedVariable(name: $0.name, value: $0.value, gradient: $0.gradient, count: $0.count)
        }
    }

    func kinkPattern() -> [Int32] {
        network.layers.indices.flatMap {
            ConvNetTests.kinkPattern(of: network.layers[$0], output: network.output(ofLayer: $0, batch: batch))
        }
    }
}

/// What a gradient check did.
struct GradientCheckReport {
    var checked = 0
    var skippedAtKinks = 0
    var worstError: Double = 0
}

/// ∂L/∂x_i from L at x_i + ε and x_i − ε (in Float) over the step actually taken; nil when either step changes the
/// kink pattern. Leaves x_i as it found it.
private func centralDifference(_ model: GradientCheckable, _ variable: CheckedVariable, _ i: Int, epsilon: Float,
                               basePattern: [Int32], loss: () -> Double) -> Double? {
    let original = variable.value[i]
    let up = original + epsilon, down = original - epsilon
    variable.value[i] = up
    let lossUp = loss()
    let patternUp = model.kinkPattern()
    variable.value[i] = down
    let lossDown = loss()
    let patternDown = model.kinkPattern()
    variable.value[i] = original
    if patternUp != basePattern || patternDown != basePattern { return nil }
    return (lossUp - lossDown) / (Double(up) - Double(down))
}

/// Compares backward's gradients with central differences of L = Σ r·y for a random projection r.
///
/// Each coordinate is perturbed in Float by ±ε; L is accumulated in Float64, and the difference quotient divides by
/// the step actually taken (the rounded x + ε minus the rounded x − ε). A coordinate passes when
/// |analytic − numeric| ≤ absolute + relative · max(|analytic|, |numeric|). Coordinates whose perturbation changes the
/// kink pattern (a ReLU sign or a max-pool argmax) are skipped and counted; at most a quarter may be skipped.
/// Tensors with more than `maxCoordinates` entries are checked on a seeded random subset.
@discardableResult
func checkGradients(_ model: GradientCheckable, epsilon: Float = 1e-2, relative: Double = 1e-2, absolute: Double = 1e-3,
                    maxCoordinates: Int = 48, seed: UInt64 = 5, file: StaticString = #filePath,
                    line: UInt = #line) -> GradientCheckReport {
    let y = model.runForward()
    let projection = TensorStorage(batch: y.batch, shape: y.shape)
    fillNormal(projection.tensor.data, count: projection.tensor.count, seed: seed)
    let r = projection.tensor
    let basePattern = model.kinkPattern()
    model.runBackward(outputGradient: r)
    let analytic = model.variables.map { Array(UnsafeBufferPointer(start: $0.gradient, count: $0.count)) }

    func loss() -> Double {
        let out = model.runForward()
        var sum: Double = 0
        for i in 0..<out.count { sum += Double(r.data[i]) * Double(out.data[i]) }
        return sum
    }

    var report = GradientCheckReport()
    var rng = SeededGenerator(seed: seed &+ 1)
    for (v, variable) in model.variables.enumerated() {
        XCTAssert(analytic[v].allSatisfy(\.isFinite), "\(variable.name): non-finite analytic gradient", file: file,
            line: line)
        var coordinates = Array(0..<variable.count)
        if coordinates.count > maxCoordinates {
            coordinates.shuffle(using: &rng)
            coordinates = Array(coordinates.prefix(maxCoordinates))
        }
        var failures = 0
        for i in coordinates {
            guard let numeric = centralDifference(model, variable, i, epsilon: epsilon, basePattern: basePattern,
                                                  loss: loss) else {
                report.skippedAtKinks += 1
                continue
            }
            report.checked += 1
            let a = Double(analytic[v][i])
            let error = abs(a - numeric)
            report.worstError = max(report.worstError, error / (absolute + relative * max(abs(a), abs(numeric))))
            if error > absolute + relative * max(abs(a), abs(numeric)) {
                failures += 1
                if failures <= 5 {
                    XCTFail("\(variable.name)[\(i)]: analytic \(a), numeric \(numeric)", file: file, line: line)
                }
            }
        }
        if failures > 5 { XCTFail("\(variable.name): \(failures) coordinates differ in all", file: file, line: line) }
    }
    // Restore the unperturbed forward, so callers may inspect it.
    _ = model.runForward()
    XCTAssertGreaterThan(report.checked, 0, "no coordinate was checked", file: file, line: line)
    XCTAssertLessThanOrEqual(report.skippedAtKinks * 4, report.checked + report.skippedAtKinks,
                             "too many coordinates sit at kinks (\(report.skippedAtKinks)); the check proves little",
                             file: file, line: line)
    return report
}

/// Builds one layer and checks its input and parameter gradients.
@discardableResult
func checkLayer(_ json: String, inputs: [Shape], batch: Int, mode: Mode = .train, epsilon: Float = 1e-2,
                relative: Double = 1e-2, absolute: Double = 1e-3, kernels: KernelChoices = .standard,
                file: StaticString = #filePath, line: UInt = #line) -> GradientCheckReport? {
    do {
        let harness = try LayerHarness(json, inputs: inputs, batch: batch, kernels: kernels)
        harness.mode = mode
        return checkGradients(harness, epsilon: epsilon, relative: relative, absolute: absolute, file: file, line: line)
    } catch {
        XCTFail("could not build \(json): \(error)", file: file, line: line)
        return nil
    }
}

/// Element-wise closeness: |a − b| ≤ tolerance · max(|b|, floor), with `floor` guarding values near zero.
func assertClose(_ actual: [Float], _ expected: [Double], tolerance: Double, floor: Double = 1e-6, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(what): count", file: file, line: line)
    var failures = 0
    for i in 0..<min(actual.count, expected.count) {
        let a = Double(actual[i]), b = expected[i]
        if !(abs(a - b) <= tolerance * max(abs(b), floor)) {
            failures += 1
            if failures <= 5 { XCTFail("\(what)[\(i)]: \(a) vs expected \(b)", file: file, line: line) }
        }
    }
}

func shape(_ c: Int, _ h: Int, _ w: Int) -> Shape { Shape(channels: c, height: h, width: w) }
