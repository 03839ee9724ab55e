/// One curve of a report chart: points in data units, drawn as one SVG polyline (non-finite points are left out).
struct ChartSeries {
    var label: String
    /// A CSS colour.
    var color: String
    var points: [(x: Double, y: Double)]
    /// Dots at the points too: for curves of few points (one per epoch), which a line alone would hide.
    var markers = false

    var finitePoints: [(x: Double, y: Double)] { points.filter { $0.x.isFinite && $0.y.isFinite } }
}
