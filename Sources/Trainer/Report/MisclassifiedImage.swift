/// A validation image the model got wrong, for the report: the picture as the network saw it (normalisation
/// undone), its class, and the model's three most probable classes with their probabilities.
struct MisclassifiedImage {
    var png: [UInt8]
    var actual: String
    var top: [(label: String, probability: Double)]
}
