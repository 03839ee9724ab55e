import Foundation
import XCTest

/// Weights in from PyTorch and out to PyTorch and ONNX, checked by the Python scripts in Tests/python (which need
/// torch, torchvision, safetensors and Pillow; onnx and onnxruntime for the ONNX parts). Each test says SKIP and is
/// skipped when no Python interpreter has those modules (`launch/setup.sh` installs them).
final class InteropTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var scripts: URL { repository.appendingPathComponent("Tests/python") }

    /// The first of `python3` and Debian's `/usr/bin/python3` (where python3-torch installs) that imports `modules`.
    static func python(_ modules: [String]) -> String? {
        for candidate in ["python3", "/usr/bin/python3"] {
            let probe = try? runProcess([candidate, "-c", "import " + modules.joined(separator: ", ")], timeout: 120)
            if probe?.status == 0 { return candidate }
        }
        return nil
    }

    /// The release dtrain when it is newer than every source file (AlexNet predicts 5× faster than in a debug
    /// build; launch/test.sh builds it first), else the debug one next to the tests.
    static func dtrain() throws -> String {
        let debug = try DTrainJob.executable()
        let release = repository.appendingPathComponent(".build/release/dtrain")
        func modified(_ path: String) -> Date? {
            (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
        }
        let sources = repository.appendingPathComponent("Sources").path
        let newestSource = (FileManager.default.enumerator(atPath: sources)?.allObjects as? [String] ?? [])
            .compactMap { modified(sources + "/" + $0) }.max()
        if let built = modified(release.path), let newestSource, built > newestSource { return release.path }
        return debug.path
    }

    /// Runs a check script; with onnx and onnxruntime present it includes the ONNX part, otherwise it says SKIP for it.
    func check(_ script: String, _ arguments: [String], timeout: Double = 600) throws {
        let needed = ["torch", "torchvision", "safetensors", "PIL"]
        guard let python = Self.python(needed) else {
            throw XCTSkip("SKIP: no python3 imports \(needed.joined(separator: ", ")) (launch/setup.sh installs them)")
        }
        var args = arguments
        if Self.python(needed + ["onnx", "onnxruntime"]) == python {
            args.append("--onnx")
        } else {
            print("SKIP: onnx or onnxruntime is not installed for \(python): the ONNX part of \(script) does not run")
        }
        let path = Self.scripts.appendingPathComponent(script).path
        let outcome = try runProcess([python, path] + args, timeout: timeout)
        print(outcome.stdout)
        if outcome.stdout.hasPrefix("SKIP") { throw XCTSkip(outcome.stdout) }
        XCTAssertFalse(outcome.timedOut, "\(script) timed out")
        XCTAssertEqual(outcome.status, 0, "\(script):\n\(outcome.stdout)\n\(outcome.stderr)")
        XCTAssertTrue(outcome.stdout.contains("\nOK") || outcome.stdout.hasPrefix("OK"), outcome.stdout)
    }

    /// Every layer type on tiny shapes: a PyTorch state dict (by torch names and by order) predicts as in PyTorch,
    /// exports back with strict loading, and runs in ONNX Runtime.
    func testEveryLayerTypeThroughPyTorchAndONNX() throws {
        try check("check_layers.py", [try Self.dtrain(), makeTemporaryDirectory(self)])
    }

    /// The one AlexNet check: torchvision's random-init AlexNet → .pth → safetensors → dtrain predict, the
    /// PyTorch export loaded strictly, the ONNX export in ONNX Runtime: the same top-5 and probabilities.
    func testTorchvisionAlexNetThroughDTrainPyTorchAndONNX() throws {
        let config = Self.repository.appendingPathComponent("configs/alexnet-torchvision.json").path
        try check("check_torchvision.py", ["alexnet", try Self.dtrain(), config, makeTemporaryDirectory(self)])
    }

    func testTorchvisionGoogLeNetThroughDTrainPyTorchAndONNX() throws {
        let config = Self.repository.appendingPathComponent("configs/googlenet-torchvision.json").path
        try check("check_torchvision.py", ["googlenet", try Self.dtrain(), config, makeTemporaryDirectory(self)])
    }

    /// A net dtrain trained on real Fashion-MNIST images, exported: PyTorch and ONNX Runtime get the same validation
    /// images wrong as `dtrain eval`.
    func testTrainedFashionNetExportsWithTheSameValidationErrors() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist") else {
            throw XCTSkip("SKIP: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
        }
        guard Self.python(["torch", "safetensors", "PIL"]) != nil else {
            throw XCTSkip("SKIP: no python3 imports torch, safetensors, PIL")
        }
        let dir = makeTemporaryDirectory(self), data = dir + "/fashion", dtrain = try Self.dtrain()
        let prepare = try runProcess([dtrain, "prepare", "fashion-mnist", data, "--limit", "1000"], timeout: 120)
        XCTAssertEqual(prepare.status, 0, prepare.stderr)
        let config = try Self.fashionConfig(root: data, output: dir + "/run", in: dir)
        let train = try runProcess([dtrain, config], timeout: 300)
        XCTAssertEqual(train.status, 0, train.stdout + train.stderr)
        let eval = try runProcess([dtrain, "eval", config, "--checkpoint", dir + "/run/best.safetensors"], timeout: 120)
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let wrong = try XCTUnwrap(Self.wrongCount(eval.stdout), eval.stdout)
        XCTAssertLessThan(wrong, 500, "the net should have learned something: \(eval.stdout)")
        try check("check_trained.py",
                  [dtrain, dir + "/run/best.safetensors", config, data, String(wrong), dir + "/check"])
    }

    /// fashion-lenet-16 (the quick start's net at half the width, quick to train) for two epochs on the given folder.
    static func fashionConfig(root: String, output: String, in dir: String) throws -> String {
        let base = repository.appendingPathComponent("configs/fashion-lenet-16.json")
        var text = try String(contentsOf: base, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"root\": \"data/fashion-mnist\"", with: "\"root\": \"\(root)\"")
            .replacingOccurrences(of: "\"epochs\": 12", with: "\"epochs\": 2")
            .replacingOccurrences(of: "\"output\": \"runs/fashion-lenet-16\"", with: "\"output\": \"\(output)\"")
        let path = dir + "/fashion-lenet.json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// "(N wrong)" from dtrain eval's line.
    static func wrongCount(_ text: String) -> Int? {
        guard let range = text.range(of: #"\((\d+) wrong\)"#, options: .regularExpression) else { return nil }
        return Int(text[range].dropFirst().prefix { $0.isNumber })
    }
}
