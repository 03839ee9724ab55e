import ConvNet
import Foundation
@testable import Trainer
import XCTest

/// Issue 15, the run report as a pure function of its contents: text is escaped, the charts place known rows at
/// known pixels, the heat map has one cell per (actual, predicted) pair, and the page loads nothing from elsewhere.
final class RunReportTests: XCTestCase {
    /// Three classes; the second named so that it needs escaping.
    func matrix(classes: Int = 3) -> ConfusionMatrix {
        let names = (0..<classes).map { $0 == 1 ? "a<b & \"c\"" : "class\($0)" }
        let storage = TensorStorage(batch: classes, shape: Shape(vector: classes))
        for s in 0..<classes { storage.tensor.data[s * classes + (s + 1) % classes] = 1 }   // each taken for the next
        var m = ConfusionMatrix(classNames: names)
        m.add(logits: storage.tensor, labels: (0..<classes).map(Int32.init))
        return m
    }

    /// Two step rows (steps 5 and 10) and the epoch row at step 10.
    let rows = [
        MetricsRow(epoch: 1, step: 5, lr: 0.1, trainLoss: 2, trainTop1Error: 0.5, trainTop5Error: 0.2),
        MetricsRow(epoch: 1, step: 10, lr: 0.05, trainLoss: 1, trainTop1Error: 0.25, trainTop5Error: 0.1),
        MetricsRow(epoch: 1, step: 10, lr: 0.05, trainLoss: 1.5, trainTop1Error: 0.4, trainTop5Error: 0.15,
                   valLoss: 1.5, valTop1Error: 0.3, valTop5Error: 0.05),
    ]

    func report(config: String = "{\"seed\": 0}", classes: Int = 3) throws -> RunReport {
        let picture = try RasterImage(width: 4, height: 4, channels: 1, fill: RGB(90, 90, 90)).pngBytes()
        let wrong = MisclassifiedImage(png: picture, actual: "class0", top: [("a<b & \"c\"", 0.7), ("class0", 0.2)])
        var timing = StepTiming()
        timing.forward = 0.5
        timing.backward = 1.5
        return RunReport(network: "tiny <net>", output: "/runs/x", epochsDone: 1, epochs: 2, rows: rows,
                         confusion: matrix(classes: classes), filtersPNG: picture, misclassified: [wrong],
                         configText: config,
                         machine: MachineDescription(host: "node1", processor: "Some CPU @ 2.0GHz", cores: 2,
                                                     vectorUnits: "AVX2 + FMA"),
                         ranks: 2, threadsPerRank: 1, decodeThreadsPerRank: 2, blasReport: "BLAS: Haswell kernels",
                         epochTimes: [.init(epoch: 1, steps: 10, trainSeconds: 2, evaluationSeconds: 0.5,
                                            timing: timing)])
    }

    func occurrences(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    func testTextFromTheRunIsEscaped() throws {
        let page = try RunReportPage.html(report(config: "{\"note\": \"<script>alert('x')</script> & more\"}"))
        XCTAssertTrue(page.contains("{&quot;note&quot;: &quot;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; "
            + "&amp; more&quot;}"), page)
        XCTAssertTrue(page.contains("a&lt;b &amp; &quot;c&quot;"))
        XCTAssertTrue(page.contains("dtrain report: tiny &lt;net&gt;"))
        XCTAssertFalse(page.contains("a<b"))
        XCTAssertFalse(page.lowercased().contains("<script"))
        XCTAssertEqual(HTMLText.escape("x'\"<>&y"), "x&#39;&quot;&lt;&gt;&amp;y")
    }

    /// Plot area 64…544 × 28…256 px; x from 0 to step 10, loss from 0 to 2 (the largest, already round).
    func testChartsPlaceKnownRowsAtKnownPixels() throws {
        let charts = RunReportPage.charts(try report())
        XCTAssertEqual(charts.map(\.title), ["loss", "top-1 error", "top-5 error", "learning rate"])
        let loss = charts[0]
        XCTAssertEqual(loss.polylinePoints(loss.series[0]), "304.0,28.0 544.0,142.0")
        XCTAssertEqual(loss.polylinePoints(loss.series[1]), "544.0,85.0")
        let top1 = charts[1]   // train 50 % and 25 %, val 30 %: y to 50
        XCTAssertEqual(top1.polylinePoints(top1.series[0]), "304.0,28.0 544.0,142.0")
        XCTAssertEqual(top1.polylinePoints(top1.series[1]), "544.0,119.2")
        let rate = charts[3]   // 0.1 then 0.05: y to 0.1
        XCTAssertEqual(rate.polylinePoints(rate.series[0]), "304.0,28.0 544.0,142.0")
        let page = try RunReportPage.html(report())
        XCTAssertTrue(page.contains("points=\"304.0,28.0 544.0,142.0\""))
        XCTAssertTrue(page.contains("<circle cx=\"544.0\" cy=\"85.0\""), "a marker at the val point")
    }

    func testAxesEndAtRoundNumbers() {
        XCTAssertEqual(LineChart.roundUp(0.05), 0.05, accuracy: 1e-15)
        XCTAssertEqual(LineChart.roundUp(3.2), 5)
        XCTAssertEqual(LineChart.roundUp(0.0213), 0.025, accuracy: 1e-15)
        XCTAssertEqual(LineChart.roundUp(7), 10)
        XCTAssertEqual(LineChart.roundUp(0), 1)
    }

    /// Step axes tick at whole steps (a 30-step run once read 7.5 and 22.5), each value once on a short range.
    func testStepTicksAreWholeNumbers() {
        func chart(to last: Double) -> LineChart {
            LineChart(title: "loss", xLabel: "step", yLabel: "loss",
                      series: [ChartSeries(label: "train", color: "#1f77b4", points: [(0, 1), (last, 0.5)])])
        }
        XCTAssertEqual(chart(to: 30).xTicks, [0, 8, 15, 23, 30])
        XCTAssertFalse(chart(to: 30).svg.contains(">7.5<"))
        XCTAssertEqual(chart(to: 2).xTicks, [0, 1, 2])
        var fractional = chart(to: 30)
        fractional.wholeNumberX = false
        XCTAssertEqual(fractional.xTicks, [0, 7.5, 15, 22.5, 30])
        XCTAssertEqual([0, 0.0125, 1200, 2.5e-5].map(LineChart.number), ["0", "0.0125", "1200", "2.5e-05"])
    }

    func testHeatMapHasOneCellPerClassPair() throws {
        for classes in [3, 7] {
            let page = try RunReportPage.html(report(classes: classes))
            XCTAssertEqual(occurrences("<rect class=\"cell\"", in: page), classes * classes)
        }
        let map = ConfusionHeatMap(matrix: matrix())
        XCTAssertEqual(map.fraction(actual: 0, predicted: 1), 1)
        XCTAssertTrue(map.svg.contains("fill=\"rgb(8,48,107)\""), "a whole row in one column is darkest")
        XCTAssertEqual(occurrences("fill=\"rgb(255,255,255)\"", in: map.svg), 6)
    }

    /// The caption and the slanted column names fit inside the picture however few the classes (with 3, the caption
    /// used to run past the right edge).
    func testHeatMapCaptionFitsForFewClasses() throws {
        XCTAssertGreaterThanOrEqual(ConfusionHeatMap.captionWidth, ConfusionHeatMap.caption.count * 6)
        for classes in [2, 3, 10, 40] {
            let svg = ConfusionHeatMap(matrix: matrix(classes: classes)).svg
            func number(after key: String, in text: Substring) -> Int? {
                guard let start = text.range(of: key + "=\"") else { return nil }
                return Int(text[start.upperBound...].prefix { $0.isNumber })
            }
            let width = try XCTUnwrap(number(after: "width", in: svg[...]))
            let captionTag = try XCTUnwrap(svg.range(of: "<text class=\"axis\""))
            let x = try XCTUnwrap(number(after: "x", in: svg[captionTag.lowerBound...]))
            XCTAssertGreaterThanOrEqual(x - ConfusionHeatMap.captionWidth / 2, 0, "\(classes) classes: cut on the left")
            XCTAssertLessThanOrEqual(x + ConfusionHeatMap.captionWidth / 2, width,
                                     "\(classes) classes: cut on the right")
            let lastColumn = 130 + (classes - 1) * (classes <= 12 ? 36 : max(8, 432 / classes)) + 18
            XCTAssertLessThanOrEqual(lastColumn + 60, width, "\(classes) classes: the last column's name is cut")
        }
    }

    /// Beyond `largestDrawn` classes the map is a picture of one pixel per cell, not thousands of SVG elements.
    func testLargeMatrixIsAPicture() throws {
        let classes = ConfusionHeatMap.largestDrawn + 1
        let map = ConfusionHeatMap(matrix: matrix(classes: classes))
        let html = try map.html()
        XCTAssertFalse(html.contains("<rect"))
        XCTAssertTrue(html.hasPrefix("<img class=\"heatmap\""))
        let picture = map.picture
        XCTAssertEqual([picture.width, picture.height], [classes, classes])
        XCTAssertEqual(picture.pixel(1, 0), RGB(8, 48, 107))
        XCTAssertEqual(picture.pixel(0, 0), .white)
    }

    func testPageIsSelfContained() throws {
        let page = try RunReportPage.html(report())
        XCTAssertTrue(page.hasPrefix("<!DOCTYPE html>"))
        XCTAssertFalse(page.lowercased().contains("<script"))
        XCTAssertFalse(page.lowercased().contains("http"), "nothing fetched, no namespace URLs either")
        XCTAssertFalse(page.contains("<link"))
        XCTAssertEqual(occurrences("<svg", in: page), 5, "four charts and the heat map")
        XCTAssertEqual(occurrences("src=\"data:image/png;base64,", in: page), 2, "the filters and one sample")
        XCTAssertTrue(page.contains("2 × 1 BLAS thread (+ 2 decoding per rank)"))
        XCTAssertTrue(page.contains("BLAS: Haswell kernels"))
        XCTAssertTrue(page.contains("Some CPU @ 2.0GHz"))
        // 10 steps: forward 0.5 s is 50 ms per step, backward 150 ms, 200 ms in all.
        XCTAssertTrue(page.contains("<td>50.00</td><td>150.00</td>"), page)
        XCTAssertTrue(page.contains("<td>200.00</td><td>2.0</td><td>0.5</td>"))
        XCTAssertTrue(page.contains("best val top-1 70.00% (top-5 95.00%) at epoch 1"))
    }

    func testProcessorModelComesFromCPUInfo() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU\n"
            + "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU\n"
        XCTAssertEqual(MachineDescription.modelName(cpuinfo: text), "Intel(R) Xeon(R) Gold 6338 CPU")
        XCTAssertNil(MachineDescription.modelName(cpuinfo: "processor\t: 0\nHardware\t: BCM2835\n"))
        XCTAssertGreaterThan(MachineDescription.current().cores, 0)
    }
}
