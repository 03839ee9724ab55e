import ConvNet
import Foundation

/// The machine rank 0 runs on, as the report names it: the processor's model name (from /proc/cpuinfo), the
/// logical cores the system offers, and what cpuid says about its vector units.
struct MachineDescription: Equatable {
    var host: String
    var processor: String
    var cores: Int
    var vectorUnits: String

    static func current() -> MachineDescription {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let cpu = Processor.current
        return MachineDescription(host: ProcessInfo.processInfo.hostName,
                                  processor: modelName(cpuinfo: text) ?? cpu.description,
                                  cores: ProcessInfo.processInfo.activeProcessorCount, vectorUnits: cpu.description)
    }

    /// The first "model name" line's value of a /proc/cpuinfo text (x86; nil on machines without one).
    static func modelName(cpuinfo: String) -> String? {
        for line in cpuinfo.split(separator: "\n") where line.hasPrefix("model name") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if !name.isEmpty { return name }
        }
        return nil
    }
}
