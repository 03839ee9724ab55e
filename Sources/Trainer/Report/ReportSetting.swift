/// The facts of a run that the report shows and that do not change while it trains: its config, world and
/// machine. Rank 0 sets them once, before the first epoch.
struct ReportSetting {
    var network: String
    var output: String
    var epochs: Int
    /// The resolved config, as OUTPUT/config.json holds it.
    var configText: String
    var ranks: Int
    var threadsPerRank: Int
    var decodeThreadsPerRank: Int
    var blasReport: String?
    var machine: MachineDescription
}
