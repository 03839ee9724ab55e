import Basics
/// The lecture's "size of a conv net": per layer and in total, units (activations), weights (parameters, biases
/// included), connections (edges, each use of a tied weight counted) and forward FLOPs, for one sample.
public struct NetworkSummary {
    public struct Row {
        public var name: String
        public var type: String
        public var detail: String
        public var output: Shape
        public var cost: LayerCost
    }

    public let name: String
    public let input: Shape
    public let rows: [Row]
    public let total: LayerCost

    public init(_ network: Network) {
        self.init(name: network.spec.name, input: network.input, layers: network.layers)
    }

    /// The summary of a network on paper: nothing allocated.
    public init(_ blueprint: NetworkBlueprint) {
        self.init(name: blueprint.spec.name, input: blueprint.spec.input, layers: blueprint.layers)
    }

    init(name: String, input: Shape, layers: [Layer]) {
        self.name = name
        self.input = input
        rows = layers.map {
            Row(name: $0.name, type: $0.type, detail: $0.detail, output: $0.outputShape, cost: $0.cost)
        }
        total = rows.reduce(LayerCost(units: 0)) {
            LayerCost(units: $0.units + $1.cost.units, weights: $0.weights + $1.cost.weights,
                      connections: $0.connections + $1.cost.connections, flops: $0.flops + $1.cost.flops)
        }
    }

    /// A plain-text table; numbers have thousands separators.
    public func table() -> String {
        let header = ["layer", "type", "", "output", "units", "weights", "connections", "FLOPs"]
        var lines = [header]
        lines.append(["input", "", "", input.description, group(input.count), "", "", ""])
        for r in rows {
            lines.append([r.name, r.type, r.detail, r.output.description, group(r.cost.units), group(r.cost.weights),
                          group(r.cost.connections), group(r.cost.flops)])
        }
        lines.append(["total", "", "", "", group(total.units), group(total.weights), group(total.connections),
                      group(total.flops)])
        let widths = header.indices.map { c in lines.map { $0[c].count }.max()! }
        let numeric: Set<Int> = [4, 5, 6, 7]
        let flops = Double(total.flops)
        let perImage = flops >= 1e8 ? "\(threeDecimals(flops / 1e9)) GFLOP" : "\(threeDecimals(flops / 1e6)) MFLOP"
        var out = "\(name): input \(input), \(group(total.weights)) parameters, \(perImage) forward per image\n"
        for (i, line) in lines.enumerated() {
            let cells = line.enumerated().map { c, s in
                numeric.contains(c) ? String(repeating: " ", count: widths[c] - s.count) + s
                                    : s + String(repeating: " ", count: widths[c] - s.count)
            }
            out += cells.joined(separator: "  ") + "\n"
            if i == 0 || i == lines.count - 2 {
                out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
            }
        }
        return out
    }
}
